"""Replay an unpruned study's learning curves through candidate pruners, in seconds.

A pruner decides from the values trials report epoch by epoch. An unpruned study (the
``none`` studies ``bench_pruning.py --keep DIR`` leaves behind) holds every trial's whole
curve, so each candidate can be replayed over the same trials in the same order: the epochs it
would have let train, whether the study's best trial survives, and the epochs spent until the
first kept trial within ``--tolerance`` of the best. This ranks pruners before the real, slow
comparison; it is not that comparison, because a pruned study's sampler sees other values and
draws other trials (``bench_pruning.py`` measures that).

    python benchmarks/replay_pruning.py /tmp/keep/none-0.db /tmp/keep/none-1.db
    python benchmarks/replay_pruning.py none-0.db --pruner "{name: successive_halving}"
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import yaml
from _common import Emitter, parser
from optuna.trial import TrialState

from hpo.study import build_pruner

CANDIDATES = [
    "{name: none}",
    "{name: median, n_startup_trials: 5, n_warmup_steps: 2}",
    "{name: median, n_startup_trials: 5, n_warmup_steps: 0}",
    "{name: percentile, percentile: 25, n_startup_trials: 5, n_warmup_steps: 0}",
    "{name: percentile, percentile: 25, n_startup_trials: 5, n_warmup_steps: 1}",
    "{name: successive_halving, min_resource: 1, reduction_factor: 3}",
    "{name: successive_halving, min_resource: 1, reduction_factor: 4}",
    "{name: hyperband, min_resource: 1, reduction_factor: 3}",
]


def curves(db: Path) -> list[dict[int, float]]:
    """Each finished trial's intermediate values, in trial-number order."""
    study = optuna.load_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    kept = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if "hpo:discarded" not in t.user_attrs and t.intermediate_values
    ]
    return [dict(t.intermediate_values) for t in sorted(kept, key=lambda t: t.number)]


def replay(pruner_spec: dict[str, Any], trials: list[dict[int, float]], tol: float) -> dict:
    """The epochs a pruner lets train over ``trials``, and what the kept trials reach."""
    study = optuna.create_study(
        direction="maximize",
        pruner=build_pruner(pruner_spec),
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    final = [c[max(c)] for c in trials]
    target = max(final) - tol
    spent, best, to_best, complete = 0, None, None, 0
    for curve, value in zip(trials, final, strict=True):
        trial = study.ask()
        for step in sorted(curve):
            trial.report(curve[step], step)
            spent += 1
            if trial.should_prune():
                study.tell(trial, state=TrialState.PRUNED)
                break
        else:
            study.tell(trial, value)
            complete += 1
            best = value if best is None else max(best, value)
            if to_best is None and value >= target:
                to_best = spent
    return {
        "epochs": spent,
        "complete": complete,
        "best": round(best, 4) if best is not None else None,
        "reference_best": round(max(final), 4),
        "epochs_to_best": to_best,
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("studies", type=Path, nargs="+", help="SQLite files of unpruned studies")
    p.add_argument("--pruner", action="append", default=None, help="a study.pruner mapping")
    p.add_argument("--tolerance", type=float, default=0.01)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    emit = Emitter("replay_pruning", args.out)
    for db in args.studies:
        trials = curves(db)
        for text in args.pruner or CANDIDATES:
            spec = yaml.safe_load(text)
            figures = replay(spec, trials, args.tolerance)
            emit(study=db.name, trials=len(trials), pruner=spec, **figures)


if __name__ == "__main__":
    main()
