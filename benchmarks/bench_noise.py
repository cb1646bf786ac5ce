"""How much of a trial's validation macro-F1 is noise: one config trained again and again.

A study ranks trials by the validation macro-F1 of one fold (about 210 images of the demo).
Each config given is trained on fold 0 several times (the study's pruning is left out, every
run trains all its epochs):

* ``init``: the same split (seed 0), other training seeds (initialization, shuffling,
  augmentation): what separates two trials of one study that drew the same config;
* ``split``: training seed 0, the splits of other seeds (other people in the validation fold):
  what separates the same config in studies of other sampler seeds, or one fold from another.

Each line gives, per run kind, the mean, standard deviation and range of the validation
macro-F1 at the epochs the shipped successive-halving pruner compares at (2, 4, 10) and at the
last one. Compare the standard deviation with the gaps between a study's best trials
(``--study DB``: the complete trials' values, best first).

    python benchmarks/bench_noise.py --quick
    python benchmarks/bench_noise.py --configs best-tpe-0.yaml best-tpe-1.yaml --runs 5 \
        --study KEEP/tpe-0.db
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path
from typing import Any

import optuna
import torch
import yaml
from _common import ROOT, Emitter, demo_data, log, parser, workdir

from hpo.config import TrainConfig, train_config_from_dict
from hpo.data import load_training_data
from hpo.train import EpochResult, cross_validate, make_splits

# The shipped successive-halving pruner compares trials at steps 1, 3 and 9: epochs 2, 4, 10.
RUNGS = (2, 4, 10)


def _shipped() -> dict[str, Any]:
    """The shipped study's fixed settings (``studies/mask-clf.yaml``)."""
    spec = yaml.safe_load((ROOT / "studies" / "mask-clf.yaml").read_text())
    return {"data": spec["data"], "train": spec["train"]}


def _config(raw: dict[str, Any], data: Path, seed: int, epochs: int | None) -> TrainConfig:
    train = dict(raw["train"]) | {"seed": seed}
    if epochs is not None:
        train["epochs"] = epochs
    kfold = dict(train.get("kfold") or {}) | {"folds": 1}
    train["kfold"] = kfold
    data_section = dict(raw.get("data") or {}) | {"root": str(data)}
    return train_config_from_dict({"data": data_section, "train": train}, "bench_noise")


def _curve(config: TrainConfig, split_seed: int, loaded: Any) -> list[float]:
    """Validation macro-F1 of every epoch of fold 0 under the splits of ``split_seed``."""
    splits = make_splits(config.model_copy(update={"train": config.train.model_copy(
        update={"seed": split_seed})}), loaded.samples)  # fmt: skip
    curve: list[float] = []

    def on_epoch_end(fold: int | None, result: EpochResult) -> bool:
        curve.append(float(result.macro_f1 or 0.0))
        return True

    cross_validate(
        config, loaded, device=torch.device("cpu"), splits=splits, on_epoch_end=on_epoch_end
    )
    return curve


def _stats(curves: list[list[float]], epoch: int) -> dict[str, float]:
    values = [c[epoch - 1] for c in curves]
    return {
        "mean": round(statistics.fmean(values), 4),
        "std": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0,
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _study_values(db: Path) -> list[float]:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.load_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    complete = [
        t.value
        for t in study.trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    return sorted(complete, reverse=True)


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument(
        "--configs", type=Path, nargs="*", default=[], help="exported configs (default: shipped)"
    )
    p.add_argument("--runs", type=int, default=None, help="runs per kind (default 5, quick 2)")
    p.add_argument("--epochs", type=int, default=None, help="train.epochs (default: config's)")
    p.add_argument("--profiles", type=int, default=None, help="demo data people")
    p.add_argument("--data", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument(
        "--study", type=Path, action="append", default=[], help="a kept study's SQLite file"
    )
    p.add_argument("--keep", type=Path, default=None, help="keep the demo data here")
    args = p.parse_args()
    runs = args.runs or (2 if args.quick else 5)
    epochs = args.epochs or (3 if args.quick else None)
    profiles = args.profiles or (40 if args.quick else 150)
    emit = Emitter("noise", args.out, quick=args.quick, profiles=profiles)
    for db in args.study:
        values = _study_values(db)
        gaps = [round(a - b, 4) for a, b in itertools.pairwise(values)][:5]
        emit(study=db.name, complete=len(values), top5=[round(v, 4) for v in values[:5]],
             top_gaps=gaps)  # fmt: skip
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with workdir(args.keep) as tmp:
        data = demo_data(args.data or tmp / "demo", profiles)
        sources = [(c.name, yaml.safe_load(c.read_text())) for c in args.configs] or [
            ("shipped", _shipped())
        ]
        loaded = None
        for name, raw in sources:
            base = _config(raw, data, 0, epochs)
            if loaded is None:
                loaded = load_training_data(base.data)
            kinds = {
                "init": [(seed, 0) for seed in range(runs)],
                "split": [(0, split) for split in range(runs)],
            }
            curves: dict[str, list[list[float]]] = {}
            for kind, pairs in kinds.items():
                curves[kind] = []
                for seed, split in pairs:
                    if kind == "split" and split == 0 and curves.get("init"):
                        curves[kind].append(curves["init"][0])  # the same run: seed 0, split 0
                        continue
                    log(f"{name}: {kind} run seed {seed} split {split} ...")
                    curves[kind].append(_curve(_config(raw, data, seed, epochs), split, loaded))
            last = base.train.epochs
            at = sorted({e for e in (*RUNGS, last) if e <= last})
            for kind, kind_curves in curves.items():
                emit(config=name, kind=kind, runs=len(kind_curves), epochs=last,
                     **{f"epoch_{e}": _stats(kind_curves, e) for e in at},
                     curves=[[round(v, 4) for v in c] for c in kind_curves])  # fmt: skip


if __name__ == "__main__":
    main()
