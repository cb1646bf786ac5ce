"""The main job on a fresh machine: `hpo run --study mask-clf --n-trials 50` on the demo data.

Measures the wall time of the whole study, trials by state, seconds per complete and pruned
trial, where trials were pruned and the best value. The goal: under 15 minutes on a 2-core CPU
machine. Each of ``--repeat`` runs is a fresh study on the same data (``synth_s``, the data's
drawing, is timed once); figures are medians with ``_min`` and ``_max``.

    python benchmarks/bench_study.py --quick       # 40 people, 6 trials of 3 epochs, 3 runs
    python benchmarks/bench_study.py [--trials 50] [--profiles 150] [--workers 1]
"""

from __future__ import annotations

import functools
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
from _common import ROOT, Emitter, demo_data, hpo_command, log, parser, repeated, repeats, workdir
from optuna.trial import TrialState


def run_once(
    tmp: Path, data: Path, args: Any, trials: int, extra: list[str], run: int
) -> dict[str, Any]:
    """One fresh study with ``args.workers`` ``hpo run`` processes; its figures."""
    db = tmp / f"study-{run}.db"
    sets = [f"data.root={data}", f"study.artifacts={db.with_suffix('.artifacts')}", *extra]
    command, env = hpo_command(
        "run", "--study", args.study, "--n-trials", str(trials), "--storage", f"sqlite:///{db}",
        "--quiet", *(a for s in sets for a in ("--set", s)),
        env={"HPO_CACHE_DIR": str(tmp / "cache")},
    )  # fmt: skip
    start = time.perf_counter()
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.PIPE}
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, **quiet) for _ in range(args.workers)]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            sys.exit(f"hpo run failed:\n{err.decode()[-2000:]}")
    study_s = time.perf_counter() - start

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name=args.study, storage=f"sqlite:///{db}")
    kept = [t for t in study.trials if "hpo:discarded" not in t.user_attrs]
    figures: dict[str, Any] = {"study_s": round(study_s, 1)}
    for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL):
        figures[state.name.lower()] = sum(t.state == state for t in kept)
    for state in (TrialState.COMPLETE, TrialState.PRUNED):
        seconds = [t.user_attrs.get("seconds", 0.0) for t in kept if t.state == state]
        if seconds:
            figures[f"{state.name.lower()}_trial_s"] = round(statistics.mean(seconds), 1)
    figures["pruned_at_steps"] = sorted(
        t.last_step for t in kept if t.state == TrialState.PRUNED and t.last_step is not None
    )
    figures["best_value"] = round(study.best_value, 4)
    log(
        f"  {trials} trials in {study_s:.1f} s: {figures['complete']} complete, "
        f"{figures['pruned']} pruned; best {study.best_value:.4f}"
    )
    return figures


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--profiles", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: study's)")
    p.add_argument("--workers", type=int, default=1, help="hpo run processes in parallel")
    p.add_argument("--study", default="mask-clf")
    args = p.parse_args()
    trials = args.trials or (6 if args.quick else 50)
    profiles = args.profiles or (40 if args.quick else 150)
    epochs = args.epochs or (3 if args.quick else None)
    extra = [] if epochs is None else [f"train.epochs={epochs}"]
    emit = Emitter(
        "study", args.out, quick=args.quick, study=args.study, trials=trials,
        profiles=profiles, workers=args.workers, epochs=epochs,
    )  # fmt: skip

    with workdir(None) as tmp:
        start = time.perf_counter()
        data = demo_data(tmp / "mask", profiles)
        synth_s = round(time.perf_counter() - start, 1)
        measure = functools.partial(run_once, tmp, data, args, trials, extra)
        emit(synth_s=synth_s, **repeated(repeats(args), measure))


if __name__ == "__main__":
    main()
