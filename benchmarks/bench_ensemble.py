"""The final model on the demo data: the best single trial against the top 3 averaged against
the ensemble selected on out-of-fold predictions, each scored on the eval images.

For each seed, ``hpo run --study mask-clf`` (sampler seeded), then ``hpo export --top 3`` and
``hpo train --folds all`` of each exported config (every run keeps its out-of-fold
probabilities). Scored on the demo's eval images (``hpo predict`` + ``hpo score``):

* ``single_full``: the best trial retrained on all training data (``hpo train --full``);
* ``single_folds``: the best trial's fold ensemble (``--folds all``);
* ``top3``: the three runs averaged with equal weights (``hpo predict --run A --run B --run C``);
* ``oof``: the runs and weights ``hpo ensemble`` selects on their out-of-fold macro-F1
  (``hpo predict --ensemble``).

Each line also carries what it cost: training seconds of the runs it uses and prediction
seconds (``hpo predict``'s wall time, start-up included).

    python benchmarks/bench_ensemble.py --quick
    python benchmarks/bench_ensemble.py --seeds 0 1 2 --trials 30

With ``--keep DIR`` the studies stay in DIR, and a study already there with the same trials and
settings is read instead of run again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import yaml
from _common import Emitter, demo_data, hpo, hpo_run, log, parser, workdir

TOP = 3


def _timed(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    hpo(*args, env=env)
    return time.perf_counter() - start


def _score(submission: Path, data: Path) -> dict[str, float]:
    answers = data / "eval" / "answers.csv"
    report = json.loads(hpo("score", "--pred", str(submission), "--truth", str(answers),
                            "--json").stdout)  # fmt: skip
    return {
        "test_macro_f1": round(report["macro_f1"], 4),
        "test_accuracy": round(report["accuracy"], 4),
    }


def _predict(
    name: str, sources: list[str], data: Path, tmp: Path, env: dict[str, str]
) -> dict[str, Any]:
    submission = tmp / f"{name}.csv"
    seconds = _timed("predict", *sources, "--data", str(data / "eval"), "--out", str(submission),
                     env=env)  # fmt: skip
    return {"predict_s": round(seconds, 1), **_score(submission, data)}


def one_seed(seed: int, trials: int, data: Path, tmp: Path, extra: list[str],
             env: dict[str, str]) -> list[dict[str, Any]]:  # fmt: skip
    db = tmp / f"study-{seed}.db"
    sets = [f"data.root={data}", f"study.sampler.seed={seed}", f"train.seed={seed}", *extra]
    study_s = hpo_run(db, trials, sets, env=env)
    configs = tmp / f"top-{seed}"
    hpo("export", "--study", "mask-clf", "--storage", f"sqlite:///{db}", "--top", str(TOP),
        "--out", str(configs))  # fmt: skip
    # Best first, as export ranks them (value, then trial number).
    ranked = sorted(
        configs.glob("*.yaml"),
        key=lambda p: (-yaml.safe_load(p.read_text())["provenance"]["value"], p.name),
    )
    runs, train_s = [], []
    for config in ranked:
        run = tmp / f"run-{seed}-{config.stem}"
        if not (run / "metrics.json").is_file():
            train_s.append(_timed("train", "--config", str(config), "--folds", "all", "--quiet",
                                  "--out", str(run), env=env))  # fmt: skip
        else:
            train_s.append(float(json.loads((run / "metrics.json").read_text())["seconds"]))
        runs.append(run)
    full = tmp / f"run-{seed}-best-full"
    if not (full / "metrics.json").is_file():
        full_s = _timed("train", "--config", str(ranked[0]), "--full", "--quiet", "--out",
                        str(full), env=env)  # fmt: skip
    else:
        full_s = float(json.loads((full / "metrics.json").read_text())["seconds"])
    ensemble_file = tmp / f"ensemble-{seed}.yaml"
    start = time.perf_counter()
    hpo("ensemble", *(a for r in runs for a in ("--run", str(r))), "--out", str(ensemble_file),
        env=env)  # fmt: skip
    ensemble_s = time.perf_counter() - start
    chosen = yaml.safe_load(ensemble_file.read_text())
    common = {"seed": seed, "trials": trials, "study_s": round(study_s, 1), "runs": len(runs)}
    out = [
        {**common, "model": "single_full", "train_s": round(full_s, 1),
         **_predict(f"full-{seed}", ["--run", str(full)], data, tmp, env)},
        {**common, "model": "single_folds", "train_s": round(train_s[0], 1),
         **_predict(f"single-{seed}", ["--run", str(runs[0])], data, tmp, env)},
        {**common, "model": f"top{len(runs)}", "train_s": round(sum(train_s), 1),
         **_predict(f"top-{seed}", [a for r in runs for a in ("--run", str(r))], data, tmp, env)},
        {**common, "model": "oof", "train_s": round(sum(train_s), 1),
         "ensemble_s": round(ensemble_s, 1), "oof_macro_f1": chosen["oof_macro_f1"],
         "weights": [e["weight"] for e in chosen["runs"]],
         **_predict(f"oof-{seed}", ["--ensemble", str(ensemble_file)], data, tmp, env)},
    ]  # fmt: skip
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: study's)")
    p.add_argument("--profiles", type=int, default=None, help="demo data people")
    p.add_argument("--data", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument("--set", action="append", default=[], help="more hpo run --set KEY=VALUE")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the studies here")
    args = p.parse_args()
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    trials = args.trials or (4 if args.quick else 30)
    profiles = args.profiles or (24 if args.quick else 150)
    extra = list(args.set)
    if args.epochs or args.quick:
        extra.append(f"train.epochs={args.epochs or 2}")
    if args.quick:
        extra += ["data.image_size=[32,24]", "train.model={name: small_cnn, width: 8}"]
    emit = Emitter("ensemble", args.out, quick=args.quick, profiles=profiles)
    with workdir(args.keep) as tmp:
        data = demo_data(args.data or tmp / "demo", profiles)
        env = {"HPO_CACHE_DIR": str(tmp / "cache")}
        for seed in seeds:
            log(f"seed {seed}: {trials} trials, top {TOP} trained with --folds all ...")
            for record in one_seed(seed, trials, data, tmp, extra, env):
                emit(**record)


if __name__ == "__main__":
    main()
