"""Tuning quality on the demo data: TPE against random search against the baseline's defaults.

For each sampler and seed, ``hpo run --study mask-clf`` with the same trial budget; the study's
best is exported (``hpo export``), retrained on all training data (``hpo train --full``),
predicted on the demo's eval images (``hpo predict``) and scored against the eval answers
(``hpo score``). The ``baseline`` is one training of the competition baseline's defaults
(SGD without momentum, lr 1e-3, weight decay 5e-4, StepLR every 20 epochs gamma 0.5,
cross-entropy, batch 64, 128x96, no augmentation) with the study's epochs. Its model, a
3-conv ``BaseModel``, is not in the registry: ``small_cnn`` with global pooling stands in.
``--ceiling`` adds one long training of a strong model, to see how close the study gets.

    python benchmarks/bench_quality.py --quick
    python benchmarks/bench_quality.py --seeds 0 1 2 --trials 50
    python benchmarks/bench_quality.py --samplers --no-baseline --ceiling --ceiling-epochs 30 \
        --ceiling-model resnet18 "{name: small_cnn, width: 32}"

With ``--keep DIR`` the studies stay in DIR, and a study already there with the same trials and
settings is read instead of run again. ``--repeat N`` runs each study and training N times
(default 3 with ``--quick``, else 1: the seeds are the repeats); every figure is the median of
the runs with ``_min`` and ``_max``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import optuna
import yaml
from _common import (
    ROOT,
    Emitter,
    demo_data,
    export_best,
    hpo,
    hpo_run,
    log,
    parser,
    repeats,
    summarize,
    train_and_score,
    workdir,
)

BASELINE_MODEL = {"name": "small_cnn", "width": 32, "grid": 1}


def study_epochs() -> int:
    """``train.epochs`` of the shipped ``mask-clf`` study."""
    spec = yaml.safe_load((ROOT / "studies" / "mask-clf.yaml").read_text())
    return int(spec["train"]["epochs"])


# Each arm: the sampler (``SEED`` replaced), the pruner (None: the study file's), more
# ``hpo run`` arguments and more ``--set`` values. ``tpe`` is the shipped study as it is.
_NO_PRUNER = "{name: none}"
_LATE_PRUNER = "{name: successive_halving, min_resource: 4, reduction_factor: 3}"
ARMS: dict[str, tuple[str | None, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "tpe": (None, None, (), ()),
    "random": ("{name: random, seed: SEED}", None, (), ()),
    "gp": ("{name: gp, seed: SEED, n_startup_trials: 8}", None, (), ()),
    "tpe-independent": (
        "{name: tpe, seed: SEED, n_startup_trials: 8, multivariate: false, group: false, "
        "constant_liar: false}",
        None,
        (),
        (),
    ),
    "tpe-nopruner": (None, _NO_PRUNER, (), ()),
    "random-nopruner": ("{name: random, seed: SEED}", _NO_PRUNER, (), ()),
    "tpe-2workers": (None, None, ("--workers", "2"), ()),
    # Two validation folds per trial: the value is the mean over twice the images.
    "tpe-2folds": (None, None, (), ("train.kfold.folds=2",)),
    # The pruner's first comparison at epoch 5 (then 13) instead of 2, 4 and 10.
    "tpe-late": (None, _LATE_PRUNER, (), ()),
    "random-late": ("{name: random, seed: SEED}", _LATE_PRUNER, (), ()),
}


def tuned(
    arm: str,
    seed: int,
    trials: int,
    data: Path,
    tmp: Path,
    extra: list[str],
    env: dict[str, str],
    run: int = 0,
) -> dict[str, Any]:
    stem = f"{arm}-{seed}{_tag(run)}"
    path = tmp / f"{stem}.db"
    db = f"sqlite:///{path}"
    sampler, pruner, args, arm_sets = ARMS[arm]
    sets = [f"data.root={data}"]
    sets.append(
        f"study.sampler.seed={seed}"
        if sampler is None
        else f"study.sampler={sampler.replace('SEED', str(seed))}"
    )
    if pruner is not None:
        sets.append(f"study.pruner={pruner}")
    artifacts = tmp / f"{stem}.artifacts"
    sets += [*arm_sets, *extra, f"study.artifacts={artifacts}"]
    study_s = hpo_run(path, trials, sets, env=env, args=args)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="mask-clf", storage=db)
    config = export_best(path, tmp / f"best-{stem}.yaml")
    best = yaml.safe_load(config.read_text())["train"]
    finished = [t for t in study.trials if t.state.is_finished()]
    return {
        "best_value": round(study.best_value, 4),
        "best_trial": study.best_trial.number,
        "study_s": round(study_s, 1),
        "epochs_trained": sum(int(t.user_attrs.get("epochs_trained", 0)) for t in finished),
        # Trials that ran all epochs: the study's best is one of these.
        "complete": sum(t.state == optuna.trial.TrialState.COMPLETE for t in finished),
        "best_model": best["model"],
        "best_optimizer": best["optimizer"],
        **train_and_score(config, tmp, data, env),
    }


def recheck(
    arm: str, seed: int, k: int, data: Path, tmp: Path, env: dict[str, str], run: int = 0
) -> dict[str, Any]:
    """The study's top ``k`` each trained on all its folds; the one with the best out-of-fold
    macro-F1 (``hpo ensemble --size 1``) retrained on all data and scored.

    A study's value is one fold's validation macro-F1, so its best is partly luck; the top few
    measured on every training image instead of one fold's are ranked on steadier ground.
    """
    stem = f"{arm}-{seed}{_tag(run)}"
    top = tmp / f"top{k}-{stem}"
    if not top.is_dir():
        hpo("export", "--study", "mask-clf", "--storage", f"sqlite:///{tmp / f'{stem}.db'}",
            "--top", str(k), "--out", str(top))  # fmt: skip
    # Best first, as export ranks them (value, then trial number).
    ranked = sorted(
        top.glob("*.yaml"),
        key=lambda p: (-yaml.safe_load(p.read_text())["provenance"]["value"], p.name),
    )
    runs, seconds = [], 0.0
    for config in ranked:
        folds = tmp / f"folds-{stem}-{config.stem}"
        metrics = folds / "metrics.json"
        if not metrics.is_file():
            shutil.rmtree(folds, ignore_errors=True)
            hpo("train", "--config", str(config), "--folds", "all", "--quiet", "--out",
                str(folds), env=env)  # fmt: skip
        seconds += float(json.loads(metrics.read_text())["seconds"])
        runs.append(folds.resolve())
    pick = tmp / f"pick-{stem}.yaml"
    hpo("ensemble", *(a for r in runs for a in ("--run", str(r))), "--size", "1", "--out",
        str(pick), env=env)  # fmt: skip
    chosen = yaml.safe_load(pick.read_text())
    rank = runs.index((pick.parent / chosen["runs"][0]["run"]).resolve())
    # The study's own best is the kept ``best-STEM`` run: scored again, not retrained.
    config = tmp / f"best-{stem}.yaml" if rank == 0 else ranked[rank]
    return {
        "recheck": k,
        "candidates": len(runs),
        "rank": rank,
        "trial": yaml.safe_load(ranked[rank].read_text())["provenance"]["trial"],
        "oof_macro_f1": round(chosen["oof_macro_f1"], 4),
        "recheck_s": round(seconds, 1),
        **train_and_score(config, tmp, data, env),
    }


def fixed(name: str, train: dict[str, Any], size: list[int], data: Path, tmp: Path,
          env: dict[str, str]) -> dict[str, Any]:  # fmt: skip
    config = tmp / f"{name}.yaml"
    config.write_text(
        yaml.safe_dump({"data": {"root": str(data), "image_size": size}, "train": train})
    )
    return train_and_score(config, tmp, data, env)


def _tag(run: int) -> str:
    """The file-name suffix of repeat ``run``; run 0 keeps the names ``--keep`` has used."""
    return f"-r{run}" if run else ""


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument(
        "--samplers",
        "--arms",
        dest="arms",
        nargs="*",
        default=None,
        choices=sorted(ARMS),
        help="arms to run (default: tpe random; none given: skip)",
    )
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: study's)")
    p.add_argument("--profiles", type=int, default=None, help="demo data people")
    p.add_argument("--data", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument(
        "--ceiling", action="store_true", help="add one long training of --ceiling-model"
    )
    p.add_argument(
        "--ceiling-model",
        nargs="+",
        default=["resnet18"],
        help="model names or YAML mappings, e.g. '{name: small_cnn, width: 32}'; one run each",
    )
    p.add_argument("--ceiling-epochs", type=int, default=30)
    p.add_argument("--ceiling-size", type=int, nargs=2, default=[128, 96], metavar=("H", "W"))
    p.add_argument("--set", action="append", default=[], help="more hpo run --set KEY=VALUE")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the studies here")
    p.add_argument(
        "--recheck",
        type=int,
        default=0,
        metavar="K",
        help="also train each study's top K on all folds and score the best out-of-fold one",
    )
    args = p.parse_args()
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    trials = args.trials or (4 if args.quick else 50)
    arms = ["tpe", "random"] if args.arms is None else args.arms
    epochs = args.epochs or (2 if args.quick else study_epochs())
    profiles = args.profiles or (40 if args.quick else 150)
    extra = [*args.set, f"train.epochs={epochs}"]
    emit = Emitter("quality", args.out, quick=args.quick, profiles=profiles)
    reps = range(repeats(args))

    with workdir(args.keep) as tmp:
        data = demo_data(args.data or tmp / "demo", profiles)
        env = {"HPO_CACHE_DIR": str(tmp / "cache")}
        for seed in seeds:
            for arm in arms:
                log(f"seed {seed}: {arm}, {trials} trials of {epochs} epochs ...")
                runs = [tuned(arm, seed, trials, data, tmp, extra, env, k) for k in reps]
                emit(sampler=arm, seed=seed, trials=trials, epochs=epochs, **summarize(runs))
                if args.recheck:
                    log(f"seed {seed}: {arm}'s top {args.recheck} on all folds ...")
                    checked = [recheck(arm, seed, args.recheck, data, tmp, env, k) for k in reps]
                    emit(sampler=f"{arm}+recheck", seed=seed, trials=trials, epochs=epochs,
                         **summarize(checked))  # fmt: skip
            if not args.no_baseline:
                log(f"seed {seed}: the baseline's defaults, {epochs} epochs ...")
                train = {
                    "model": BASELINE_MODEL,
                    "epochs": epochs,
                    "batch_size": 64,
                    "optimizer": {
                        "name": "sgd",
                        "lr": 1e-3,
                        "momentum": 0.0,
                        "weight_decay": 5e-4,
                    },
                    "scheduler": {"name": "step", "step_size": 20, "gamma": 0.5},
                    "loss": {"name": "cross_entropy"},
                    "augment": {"hflip": False, "crop_scale": 1.0, "color_jitter": 0.0},
                    "seed": seed,
                }
                name = f"baseline-{seed}"
                figures = summarize(
                    [fixed(name + _tag(k), train, [128, 96], data, tmp, env) for k in reps]
                )
                emit(
                    sampler="baseline",
                    seed=seed,
                    trials=1,
                    epochs=epochs,
                    best_value=None,
                    **figures,
                )
        if args.ceiling:
            for text in args.ceiling_model:
                model = yaml.safe_load(text)
                name = model if isinstance(model, str) else model["name"]
                log(f"ceiling: {model}, {args.ceiling_epochs} epochs ...")
                train = {
                    "model": model,
                    "epochs": args.ceiling_epochs,
                    "batch_size": 64,
                    "optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 1e-4},
                    "scheduler": {"name": "cosine"},
                    "loss": {"name": "cross_entropy"},
                    "seed": 0,
                }
                size = list(args.ceiling_size)
                figures = summarize(
                    [fixed(f"ceiling-{name}{_tag(k)}", train, size, data, tmp, env) for k in reps]
                )
                emit(
                    sampler="ceiling",
                    seed=0,
                    trials=1,
                    epochs=args.ceiling_epochs,
                    model=model,
                    image_size=size,
                    best_value=None,
                    **figures,
                )


if __name__ == "__main__":
    main()
