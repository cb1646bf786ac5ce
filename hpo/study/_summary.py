"""Study summaries: trial counts by state, best and top trials, for the CLI, export and reports.

Trials a worker gave up because another worker took the study's last slot are discarded
(``hpo.study.is_discarded``); they are bookkeeping, not results, and every summary leaves them out.
Trials a warm start imported from another study (``hpo.study.is_imported``) were not trained
here: they count toward no ``--n-trials``, are never the best or a top trial, and are counted
on their own (``imported_count``); ``kept_trials`` keeps them (plots, reports show them).
``summarize_studies`` finds the studies ``hpo studies list`` shows and summarizes each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hpo.exceptions import HPOError, StorageError
from hpo.study._record import is_discarded, is_imported
from hpo.study._spec import storage_for
from hpo.study._storage import (
    list_study_names,
    load_study,
    mask_url,
    open_storage,
    resolve_storage_url,
    sqlite_file,
)

__all__ = [
    "FINISHED",
    "StudySummary",
    "best_trial",
    "counts_text",
    "finished_count",
    "imported_count",
    "kept_trials",
    "state_counts",
    "summarize_studies",
    "top_trials",
    "trained_trials",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
"""The states that count towards ``--n-trials``."""


def kept_trials(
    study: optuna.Study, states: tuple[TrialState, ...] | None = None
) -> list[FrozenTrial]:
    """The study's trials (only those in ``states``, if given), discarded ones left out."""
    return [t for t in study.get_trials(deepcopy=False, states=states) if not is_discarded(t)]


def trained_trials(
    study: optuna.Study, states: tuple[TrialState, ...] | None = None
) -> list[FrozenTrial]:
    """The trials trained in this study: discarded and imported ones left out."""
    return [t for t in kept_trials(study, states) if not is_imported(t)]


def imported_count(study: optuna.Study) -> int:
    """Trials a warm start imported from other studies."""
    return sum(1 for t in kept_trials(study) if is_imported(t))


def state_counts(study: optuna.Study) -> dict[str, int]:
    """Trials trained here per state (lower-case state names, every state present); discarded
    and imported ones left out."""
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in trained_trials(study):
        counts[trial.state.name.lower()] += 1
    return counts


def finished_count(study: optuna.Study) -> int:
    """Complete plus pruned trials trained here: what ``--n-trials`` counts."""
    return len(trained_trials(study, FINISHED))


def top_trials(study: optuna.Study, n: int | None = None) -> list[FrozenTrial]:
    """The ``n`` best complete trials trained here (all with None), best first.

    Ties on the value go to the lowest trial number, so the order does not depend on the order
    in which the storage returns trials.
    """
    complete = [t for t in trained_trials(study, (TrialState.COMPLETE,)) if t.value is not None]
    sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
    ranked = sorted(complete, key=lambda t: (sign * float(t.value or 0.0), t.number))
    return ranked if n is None else ranked[:n]


def counts_text(study: optuna.Study) -> str:
    """``"3 complete, 1 pruned"``: the non-zero counts by state, or ``"no trials"``; then
    ``", 6 imported"`` when a warm start imported trials."""
    counts = state_counts(study)
    text = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "no trials"
    imported = imported_count(study)
    return f"{text}, {imported} imported" if imported else text


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best complete trial trained here, or None before the first one."""
    top = top_trials(study, 1)
    return top[0] if top else None


@dataclass(frozen=True)
class StudySummary:
    """One row of ``hpo studies list``.

    Attributes:
        name: The study's name; None for a storage that could not be opened, the file's name
            for a study file that could not be read.
        storage: Its storage URL, password masked (for a study not started, the one its study
            file names).
        counts: Trials per state (as ``state_counts``); None for a study file not started yet
            or an unreachable storage.
        best: The best complete trial's value, if any.
        error: Why the storage (or, with a name, the study file) could not be read, else None.
    """

    name: str | None
    storage: str
    counts: dict[str, int] | None = None
    best: float | None = None
    error: str | None = None

    @property
    def n_trials(self) -> int:
        """Trials counted (discarded ones left out); 0 when not started."""
        return sum(self.counts.values()) if self.counts else 0


def summarize_studies(*, storage: str | None, studies_dir: Path) -> list[StudySummary]:
    """Every study in one storage, or else in the storages that ``studies_dir`` points at.

    With ``storage`` (``--storage``) or ``HPO_STORAGE`` only that storage is read, and an error
    opening it is raised. Without, the storages are the SQLite files in ``studies_dir`` and the
    storage each study file there resolves to (a server, say): a study file's default database
    that does not exist yet is skipped, another storage that cannot be opened becomes a row with
    its error, and a study file whose study is in none of them becomes a "not started" row.

    Raises:
        StorageError: ``storage`` cannot be opened.
    """
    storage = storage or os.environ.get("HPO_STORAGE")
    files: dict[str, str] = {}  # study file's name -> the storage it resolves to
    rows: list[StudySummary] = []
    if storage:
        urls = [resolve_storage_url("", cli=storage, spec=None, studies_dir=studies_dir)]
    else:
        for study_path in sorted(p for p in studies_dir.glob("*.yaml") if p.is_file()):
            name = study_path.stem
            try:
                files[name] = storage_for(name, cli=None, config=study_path)
            except HPOError as exc:  # one bad study file is one row, not the whole list
                rows.append(StudySummary(name=name, storage=str(study_path), error=str(exc)))
        urls = sorted({f"sqlite:///{p}" for p in studies_dir.glob("*.db")} | set(files.values()))
    seen: set[str] = set()
    for url in urls:
        path = sqlite_file(url)
        if not storage and path is not None and not path.is_file():
            continue  # a study file whose default database does not exist yet
        try:
            opened = open_storage(url, heartbeat_interval=None, create=False)
        except StorageError as exc:
            if storage:
                raise
            rows.append(StudySummary(name=None, storage=mask_url(url), error=str(exc)))
            continue
        for name in list_study_names(opened):
            seen.add(name)
            study = load_study(name, opened)
            best = best_trial(study)
            rows.append(
                StudySummary(
                    name=name,
                    storage=mask_url(url),
                    counts=state_counts(study),
                    best=best.value if best is not None else None,
                )
            )
    if not storage:
        rows += [
            StudySummary(name=name, storage=mask_url(url))
            for name, url in files.items()
            if name not in seen
        ]
    return rows
