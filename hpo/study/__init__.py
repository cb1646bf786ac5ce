"""Studies: storage, samplers, pruners, the worker loop, the study file, joining, summaries.

- ``_storage``: URL precedence, ``open_storage(url)`` for every backend, password masking and
  the one "does this study exist" check (``load_study``).
- ``_outage``: the RDB storage whose calls retry while the database is unreachable.
- ``_samplers`` / ``_pruners``: registry entries (declared in :mod:`hpo.components`), rebuilt
  from the study file by every worker.
- ``_worker``: the loop that claims slots of the study-wide total and runs trials.
- ``_spec``: the study file's schema and loading (with ``--set`` overrides).
- ``_failures``: failing the trials a dead worker process left running; the last failure's reason.
- ``_join``: creating or joining a study; fingerprints of the study file and the data.
- ``_record``: what a trial and a study store (names, types, encoding), written and read
  only through it.
- ``_warm``: warm starts: ``study.enqueue`` entries enqueued once per study, and the finished
  trials of another study imported (``hpo run --warm-start``).
- ``_summary``: counts by state, best and top trials, used by the CLI, export and reports, and
  the studies ``hpo studies list`` finds (in one storage, or those the study files point at).
"""

from __future__ import annotations

from hpo.components import PRUNERS, SAMPLERS
from hpo.study._failures import fail_trials_of_worker, last_fail_reason
from hpo.study._join import comparable_spec, open_study
from hpo.study._pruners import build_pruner
from hpo.study._record import (
    CLASS_NAMES_ATTR,
    CONFIG_ATTR,
    CUT_FOLD_ATTR,
    DATA_FINGERPRINT_ATTR,
    DISCARDED_ATTR,
    IMPORTED_ATTR,
    SPEC_ATTR,
    CutFold,
    ImportedFrom,
    StudyRecord,
    TrialRecord,
    ValidationScores,
    WarmStartSource,
    WorkerInfo,
    is_discarded,
    is_imported,
    read_study_record,
    read_trial_record,
    record_class_names,
    record_config,
    record_discarded,
    record_fail_reason,
    record_fail_reason_by_id,
    record_result,
    record_study_spec,
    record_tracker_parent,
    record_worker,
)
from hpo.study._samplers import build_sampler
from hpo.study._spec import (
    StudySettings,
    StudySpec,
    load_study_spec,
    storage_for,
    study_file,
    trackers_for,
)
from hpo.study._storage import (
    list_study_names,
    load_study,
    mask_url,
    normalize_url,
    open_storage,
    resolve_storage_url,
    sqlite_file,
)
from hpo.study._summary import (
    FINISHED,
    StudySummary,
    best_trial,
    counts_text,
    finished_count,
    imported_count,
    kept_trials,
    state_counts,
    summarize_studies,
    top_trials,
    trained_trials,
)
from hpo.study._warm import (
    Rejected,
    WarmStart,
    WarmStartPlan,
    apply_warm_start,
    enqueue_configs,
    plan_warm_start,
)
from hpo.study._worker import WorkerResult, run_worker

__all__ = [
    "CLASS_NAMES_ATTR",
    "CONFIG_ATTR",
    "CUT_FOLD_ATTR",
    "DATA_FINGERPRINT_ATTR",
    "DISCARDED_ATTR",
    "FINISHED",
    "IMPORTED_ATTR",
    "PRUNERS",
    "SAMPLERS",
    "SPEC_ATTR",
    "CutFold",
    "ImportedFrom",
    "Rejected",
    "StudyRecord",
    "StudySettings",
    "StudySpec",
    "StudySummary",
    "TrialRecord",
    "ValidationScores",
    "WarmStart",
    "WarmStartPlan",
    "WarmStartSource",
    "WorkerInfo",
    "WorkerResult",
    "apply_warm_start",
    "best_trial",
    "build_pruner",
    "build_sampler",
    "comparable_spec",
    "counts_text",
    "enqueue_configs",
    "fail_trials_of_worker",
    "finished_count",
    "imported_count",
    "is_discarded",
    "is_imported",
    "kept_trials",
    "last_fail_reason",
    "list_study_names",
    "load_study",
    "load_study_spec",
    "mask_url",
    "normalize_url",
    "open_storage",
    "open_study",
    "plan_warm_start",
    "read_study_record",
    "read_trial_record",
    "record_class_names",
    "record_config",
    "record_discarded",
    "record_fail_reason",
    "record_fail_reason_by_id",
    "record_result",
    "record_study_spec",
    "record_tracker_parent",
    "record_worker",
    "resolve_storage_url",
    "run_worker",
    "sqlite_file",
    "state_counts",
    "storage_for",
    "study_file",
    "summarize_studies",
    "top_trials",
    "trackers_for",
    "trained_trials",
]
