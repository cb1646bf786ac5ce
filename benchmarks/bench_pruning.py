"""Compute saved by pruning at equal quality: the demo study with and without its pruner.

Runs ``hpo run --study mask-clf`` on demo data once per variant and sampler seed (same seeds
across variants), then reads the study: training epochs spent (the trials' ``epochs_trained``),
wall time, best value, and ``epochs_to_best``, the epochs spent until a complete trial first
came within ``--tolerance`` of the final best of the unpruned study with the same seed and
folds (null if it never did). Variants:

    shipped           the shipped study's own pruner (epoch-level, 1 trained fold)
    none              pruner: none, 1 fold (the reference of ``shipped``)
    median-5fold      5 folds per trial, median pruner on step fold*epochs+epoch (fold 0 first)
    wilcoxon-5fold    5 folds per trial, Wilcoxon across folds
    none-5fold        5 folds, no pruner (the reference of both 5-fold variants)

    python benchmarks/bench_pruning.py --quick
    python benchmarks/bench_pruning.py --seeds 0 1 2 --trials 50
    python benchmarks/bench_pruning.py --variants none-5fold median-5fold wilcoxon-5fold
    python benchmarks/bench_pruning.py --variants shipped --pruned-trials 150 --keep DIR

With ``--keep DIR`` the studies stay in DIR and a study already there with all its trials is
read instead of run again, so a new pruner can be compared with references run earlier.
``--pruned-trials N`` gives the pruned variants N trials (kept as ``VARIANT-SEED-Ntrials``)
while their references keep ``--trials``: the question then is whether pruning, spending the
epochs it saves on more trials, reaches the unpruned best sooner (``epochs_to_best``).

``--score`` also judges each study's best on held-out images, as ``bench_quality.py`` does:
exported, retrained on all training data and scored on the demo's eval answers
(``test_macro_f1``, ``test_accuracy``). A validation best is the maximum over the trials that
finished, on about 210 images, so a study that finishes fewer trials tends to end lower even
when its models are as good; the eval score says whether pruning cost quality.

``--repeat N`` runs each study N times (runs after the first are kept as ``STEM-rK``), each
pruned run compared with the reference run of the same number; every figure is the median of
the runs with ``_min`` and ``_max``. Default 3 with ``--quick``, else 1 (seeds are the repeats).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import _common
import optuna
import yaml
from _common import (
    ROOT,
    Emitter,
    demo_data,
    hpo_run,
    log,
    parser,
    repeats,
    summarize,
    workdir,
)
from optuna.trial import TrialState

VARIANTS: dict[str, tuple[str, ...]] = {
    "shipped": (),
    "none": ("study.pruner={name: none}",),
    "median-5fold": (
        "study.pruner={name: median, n_startup_trials: 5, n_warmup_steps: 2}",
        "train.kfold.n_splits=5",
        "train.kfold.folds=5",
    ),
    "wilcoxon-5fold": (
        "study.pruner={name: wilcoxon}",
        "train.kfold.n_splits=5",
        "train.kfold.folds=5",
    ),
    "none-5fold": ("study.pruner={name: none}", "train.kfold.n_splits=5", "train.kfold.folds=5"),
}


def reference(variant: str) -> str:
    return "none-5fold" if variant.endswith("-5fold") else "none"


def run_study(
    tmp: Path, data: Path, variant: str, seed: int, trials: int, extra: list[str], stem: str
) -> dict[str, Any]:
    """One ``hpo run`` into ``tmp/stem.db``; its trials in number order and the wall time."""
    db = tmp / f"{stem}.db"
    sets = [f"data.root={data}", f"study.sampler.seed={seed}", *VARIANTS[variant], *extra]
    sets.append(f"study.artifacts={tmp / f'{stem}.artifacts'}")
    wall = hpo_run(db, trials, sets, env={"HPO_CACHE_DIR": str(tmp / "cache")})
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    kept = [t for t in study.get_trials(deepcopy=False) if "hpo:discarded" not in t.user_attrs]
    return {"trials": sorted(kept, key=lambda t: t.number), "wall_s": wall, "study": study}


def pruner_name(study: optuna.Study, variant: str) -> str:
    """The pruner the study ran with, as its study file named it."""
    if variant != "shipped":
        return variant.split("-")[0]
    spec = yaml.safe_load((ROOT / "studies" / "mask-clf.yaml").read_text())
    return str(spec["study"]["pruner"]["name"])


def epochs_until(trials: list[optuna.trial.FrozenTrial], target: float | None) -> int | None:
    spent = 0
    for t in trials:
        spent += int(t.user_attrs.get("epochs_trained", 0))
        if target is not None and t.state == TrialState.COMPLETE and t.value >= target:
            return spent
    return None


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument(
        "--pruned-trials",
        type=int,
        default=None,
        help="trials of the pruned variants (default --trials): more fit the same epochs",
    )
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: study's)")
    p.add_argument("--variants", nargs="+", default=None, choices=sorted(VARIANTS))
    p.add_argument("--profiles", type=int, default=None, help="demo data people")
    p.add_argument("--data", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument("--tolerance", type=float, default=0.01)
    p.add_argument("--set", action="append", default=[], help="more hpo run --set KEY=VALUE")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the studies here")
    p.add_argument("--score", action="store_true", help="retrain each best, score on eval")
    args = p.parse_args()
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    trials = args.trials or (10 if args.quick else 50)
    variants = args.variants or ["none", "shipped"]
    epochs = args.epochs or (4 if args.quick else None)
    profiles = args.profiles or (40 if args.quick else 150)
    extra = list(args.set)
    if epochs is not None:
        extra.append(f"train.epochs={epochs}")
    # A pruned study is compared with the unpruned one of the same folds: run that first.
    wanted = set(variants) | {reference(v) for v in variants}
    order = sorted(wanted, key=lambda v: (v != reference(v), v))
    repeat = repeats(args)
    emit = Emitter("pruning", args.out, quick=args.quick, profiles=profiles)

    with workdir(args.keep) as tmp:
        data = demo_data(args.data or tmp / "demo", profiles)
        for seed in seeds:
            refs: dict[tuple[str, int], float] = {}
            for variant in order:
                n = trials if variant == reference(variant) else args.pruned_trials or trials
                runs = []
                for run in range(repeat):
                    stem = f"{variant}-{seed}" if n == trials else f"{variant}-{seed}-{n}trials"
                    stem += f"-r{run}" if run else ""  # run 0 keeps the name --keep has used
                    log(f"seed {seed}: {variant}, {n} trials (run {run + 1} of {repeat}) ...")
                    runs.append(one_run(tmp, data, variant, seed, n, extra, stem, run, refs, args))
                emit(variant=variant, trials=n, seed=seed, **summarize(runs))


def one_run(  # type: ignore[no-untyped-def]
    tmp: Path,
    data: Path,
    variant: str,
    seed: int,
    n: int,
    extra: list[str],
    stem: str,
    run: int,
    refs: dict[tuple[str, int], float],
    args,
) -> dict[str, Any]:
    """One study of ``variant`` (compared with its reference of the same run): its figures."""
    result = run_study(tmp, data, variant, seed, n, extra, stem)
    kept = result["trials"]
    complete = [t for t in kept if t.state == TrialState.COMPLETE]
    best = max((t.value for t in complete), default=None)
    if variant == reference(variant) and best is not None:
        refs[(variant, run)] = best
    ref = refs.get((reference(variant), run))
    target = None if ref is None else ref - args.tolerance
    held_out: dict[str, Any] = {}
    if args.score and complete:
        log(f"seed {seed}: {variant}: retraining its best, scoring on eval ...")
        config = _common.export_best(tmp / f"{stem}.db", tmp / f"best-{stem}.yaml")
        held_out = _common.train_and_score(
            config, tmp, data, {"HPO_CACHE_DIR": str(tmp / "cache")}
        )
    return {
        "pruner": pruner_name(result["study"], variant),
        "folds": 5 if variant.endswith("-5fold") else 1,
        "epochs": sum(int(t.user_attrs.get("epochs_trained", 0)) for t in kept),
        "wall_s": round(result["wall_s"], 1),
        "best": None if best is None else round(best, 4),
        "reference_best": None if ref is None else round(ref, 4),
        "epochs_to_best": epochs_until(kept, target),
        "complete": len(complete),
        "pruned": sum(t.state == TrialState.PRUNED for t in kept),
        "early_stopped": sum("pruned_at_fold" in t.user_attrs for t in kept),
        **held_out,
    }


if __name__ == "__main__":
    main()
