"""Warm starts on the demo data: a 25-trial study warm-started from another seed's 25-trial
study, against cold studies of 25 and of 50 trials.

For each seed s of ``--seeds`` (default 0 1 2), with the shipped ``mask-clf`` study:

1. **cold25**: ``hpo run`` with sampler seed s to 25 trials (all seeds' first, since step 2
   reads them);
2. **warm25**: a new study with sampler seed s, ``--warm-start`` from the cold25 study of the
   next seed ((s + 1) mod n), run to 25 trials of its own (the imported ones count toward no
   ``--n-trials``);
3. **cold50**: the cold25 study continued to 50 trials (a copy of it, same study, ``--n-trials
   50``), so its first 25 trials are those of cold25.

Each study's best trial is exported (``hpo export``: never an imported trial), retrained on all
training data (``hpo train --full``), predicted on the demo's eval images and scored (eval
macro-F1). One JSON line per (seed, arm): ``best_value`` (the study's best validation
macro-F1, trials trained there only), ``test_macro_f1``, ``study_s`` (wall seconds of the
study's trials; cold50 counts its first 25 too), ``imported`` for warm25.

    python benchmarks/bench_warmstart.py --quick
    python benchmarks/bench_warmstart.py --seeds 0 1 2 --keep /tmp/warm --out warm.jsonl

With ``--keep DIR`` the studies stay in DIR, and a study already there with the same trials
and settings is read instead of run again.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import yaml
from _common import Emitter, demo_data, hpo, log, parser, train_and_score, workdir

STUDY = "mask-clf"


def run_study(
    db: Path,
    trials: int,
    sets: list[str],
    env: dict[str, str],
    *,
    extra: tuple[str, ...] = (),
    record: dict[str, Any] | None = None,
    start_from: Path | None = None,
) -> float:
    """``hpo run --study mask-clf`` on the SQLite file ``db`` up to ``trials``; its seconds.

    The study starts anew, or from a copy of the study in ``start_from`` (continued). A
    ``.json`` beside ``db`` says what finished there (trials, settings, seconds); a study
    already finished with the same is not run again.
    """
    done = db.with_suffix(".json")
    what = {"trials": trials, "sets": sets, "extra": list(extra), **(record or {})}
    if done.is_file():
        kept = json.loads(done.read_text())
        if {k: kept.get(k) for k in what} == what:
            log(f"  kept from an earlier run: {db}")
            return float(kept["wall_s"])
    db.unlink(missing_ok=True)
    if start_from is not None:
        shutil.copyfile(start_from, db)
    start = time.perf_counter()
    hpo(
        "run", "--study", STUDY, "--n-trials", str(trials), "--storage", f"sqlite:///{db}",
        "--quiet", *(a for s in sets for a in ("--set", s)), *extra, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - start
    done.write_text(json.dumps({**what, "wall_s": wall}))
    return wall


def scored(db: Path, tmp: Path, data: Path, env: dict[str, str]) -> dict[str, Any]:
    """Export the best trial trained in ``db``'s study, retrain it, score it on eval."""
    config = tmp / f"best-{db.stem}.yaml"
    hpo("export", "--study", STUDY, "--storage", f"sqlite:///{db}", "--out", str(config))
    provenance = yaml.safe_load(config.read_text())["provenance"]
    return {
        "best_value": round(float(provenance["value"]), 4),
        "best_trial": provenance["trial"],
        **train_and_score(config, tmp, data, env),
    }


def imported_line(db: Path, env: dict[str, str]) -> str:
    """The ``trials:`` line of ``hpo studies show`` (``25 complete, 24 imported``)."""
    out = hpo("studies", "show", STUDY, "--storage", f"sqlite:///{db}", env=env).stdout
    return next((line for line in out.splitlines() if line.startswith("trials:")), "")


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--trials", type=int, default=None, help="trials of cold25 and warm25")
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: study's)")
    p.add_argument("--profiles", type=int, default=None, help="demo data people")
    p.add_argument("--data", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument("--set", action="append", default=[], help="more hpo run --set KEY=VALUE")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the studies here")
    args = p.parse_args()
    seeds = args.seeds or ([0, 1] if args.quick else [0, 1, 2])
    trials = args.trials or (3 if args.quick else 25)
    profiles = args.profiles or (40 if args.quick else 150)
    epochs = args.epochs or (1 if args.quick else None)
    extra = [*args.set, *([f"train.epochs={epochs}"] if epochs else [])]
    emit = Emitter("warmstart", args.out, quick=args.quick, profiles=profiles, trials=trials)

    with workdir(args.keep) as tmp:
        data = demo_data(args.data or tmp / "demo", profiles)
        env = {"HPO_CACHE_DIR": str(tmp / "cache")}

        def sets(stem: str, seed: int) -> list[str]:
            return [
                f"data.root={data}",
                f"study.sampler.seed={seed}",
                *extra,
                f"study.artifacts={tmp / f'{stem}.artifacts'}",
            ]

        cold: dict[int, tuple[Path, float]] = {}
        for seed in seeds:
            db = tmp / f"cold-{seed}.db"
            log(f"seed {seed}: cold study, {trials} trials ...")
            cold[seed] = (db, run_study(db, trials, sets(db.stem, seed), env))
        for k, seed in enumerate(seeds):
            source_seed = seeds[(k + 1) % len(seeds)]
            source = cold[source_seed][0]
            db = tmp / f"warm-{seed}.db"
            log(f"seed {seed}: warm study from the cold study of seed {source_seed} ...")
            flags = ("--warm-start", STUDY, "--warm-start-storage", f"sqlite:///{source}")
            wall = run_study(
                db, trials, sets(db.stem, seed), env, extra=flags, record={"from": source_seed}
            )
            emit(
                seed=seed,
                arm=f"warm{trials}",
                warm_from=source_seed,
                study_trials=trials,
                study_s=round(wall, 1),
                counts=imported_line(db, env),
                **scored(db, tmp, data, env),
            )
        for seed in seeds:
            db, first = cold[seed]
            emit(
                seed=seed,
                arm=f"cold{trials}",
                study_trials=trials,
                study_s=round(first, 1),
                **scored(db, tmp, data, env),
            )
            longer = tmp / f"cold-{seed}-x2.db"
            log(f"seed {seed}: the cold study continued to {2 * trials} trials ...")
            more = run_study(longer, 2 * trials, sets(db.stem, seed), env, start_from=db)
            emit(
                seed=seed,
                arm=f"cold{2 * trials}",
                study_trials=2 * trials,
                study_s=round(first + more, 1),
                **scored(longer, tmp, data, env),
            )


if __name__ == "__main__":
    main()
