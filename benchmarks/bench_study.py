"""The main job on a fresh machine: `hpo run --study mask-clf --n-trials 50` on the demo data.

Measures wall time of the whole study, trials by state, where trials were pruned, the best
value, and seconds per complete vs pruned trial. The issue's target: under 15 minutes on a
2-core CPU machine, with pruning visibly at work.

    python benchmarks/bench_study.py [--trials 50] [--profiles 150] [--workers 1]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--profiles", type=int, default=150)
    parser.add_argument("--workers", type=int, default=1, help="hpo run processes in parallel")
    parser.add_argument("--study", default="mask-clf")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "mask"
        db = Path(tmp) / "study.db"
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "hpo",
                "data",
                "synth",
                "--out",
                str(data),
                "--profiles",
                str(args.profiles),
            ],
            check=True,
            capture_output=True,
        )
        synth_s = time.perf_counter() - t0
        cmd = [
            sys.executable,
            "-m",
            "hpo",
            "run",
            "--study",
            args.study,
            "--n-trials",
            str(args.trials),
            "--storage",
            f"sqlite:///{db}",
            "--set",
            f"data.root={data}",
            "--set",
            f"study.artifacts={db.with_suffix('.artifacts')}",
            "--quiet",
        ]
        t0 = time.perf_counter()
        procs = [
            subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(args.workers)
        ]
        for p in procs:
            _, err = p.communicate()
            if p.returncode != 0:
                sys.exit(f"hpo run failed:\n{err.decode()[-2000:]}")
        study_s = time.perf_counter() - t0

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        study = optuna.load_study(study_name=args.study, storage=f"sqlite:///{db}")
        trials = [t for t in study.trials if "hpo:discarded" not in t.user_attrs]
        by_state = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
        seconds = {
            state: [t.user_attrs.get("seconds", 0.0) for t in trials if t.state == state]
            for state in (TrialState.COMPLETE, TrialState.PRUNED)
        }
        pruned_steps = sorted(
            t.last_step for t in trials if t.state == TrialState.PRUNED and t.last_step is not None
        )

    print(f"demo data ({args.profiles} people): {synth_s:.1f} s")
    print(
        f"study of {args.trials} trials, {args.workers} worker(s): {study_s:.1f} s "
        f"({study_s / 60:.1f} min)"
    )
    print("trials: " + ", ".join(f"{v} {k}" for k, v in by_state.items() if v))
    for state, values in seconds.items():
        if values:
            print(f"  {state.name.lower():>8}: mean {statistics.mean(values):.1f} s per trial")
    print(f"pruned at steps: {pruned_steps}")
    print(
        f"best value (mean validation macro-F1): {study.best_value:.4f} "
        f"(trial {study.best_trial.number})"
    )


if __name__ == "__main__":
    main()
