"""Study summaries: trial counts by state, best and top trials, for the CLI, export and reports.

Trials a worker gave up because another worker took the study's last slot carry
``DISCARDED_ATTR``; they are bookkeeping, not results, and every summary leaves them out.
"""

from __future__ import annotations

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = [
    "DISCARDED_ATTR",
    "FINISHED",
    "best_trial",
    "counts_text",
    "finished_count",
    "state_counts",
    "top_trials",
]

DISCARDED_ATTR = "hpo:discarded"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The states that count towards ``--n-trials``."""


def _kept(study: optuna.Study, states: tuple[TrialState, ...] | None = None) -> list[FrozenTrial]:
    return [
        t
        for t in study.get_trials(deepcopy=False, states=states)
        if DISCARDED_ATTR not in t.user_attrs
    ]


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (lower-case state names, every state present), discarded ones left out."""
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in _kept(study):
        counts[trial.state.name.lower()] += 1
    return counts


def finished_count(study: optuna.Study) -> int:
    """Complete plus pruned trials: what ``--n-trials`` counts."""
    return len(_kept(study, FINISHED))


def top_trials(study: optuna.Study, n: int | None = None) -> list[FrozenTrial]:
    """The ``n`` best complete trials (all with None), best first.

    Ties on the value go to the lowest trial number, so the order does not depend on the order
    in which the storage returns trials.
    """
    complete = [t for t in _kept(study, (TrialState.COMPLETE,)) if t.value is not None]
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    ranked = sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))
    return ranked if n is None else ranked[:n]


def counts_text(study: optuna.Study) -> str:
    """``"3 complete, 1 pruned"``: the non-zero counts by state, or ``"no trials"``."""
    counts = state_counts(study)
    return ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trials"


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial, or None before the first one."""
    top = top_trials(study, 1)
    return top[0] if top else None
