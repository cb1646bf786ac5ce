"""Studies: storage URLs, samplers and pruners from the study file, and the worker loop.

Several workers (processes, machines) share one study through its storage. ``--n-trials N``
is the study-wide number of finished (complete + pruned) trials: each worker claims a slot
before it trains, a worker that loses a race for the last slot gives its trial up, and a worker
with no free slot waits for the trials of other workers to end (one may fail and free a slot).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import sqlalchemy
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from hpo.exceptions import ConfigError, StorageError
from hpo.registry import Registry

__all__ = [
    "DATA_FINGERPRINT_ATTR",
    "DISCARDED_ATTR",
    "PRUNERS",
    "SAMPLERS",
    "SPEC_ATTR",
    "WorkerResult",
    "create_storage",
    "load_study",
    "mask_url",
    "resolve_storage_url",
    "run_worker",
    "storage_for",
    "study_counts",
    "study_file",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
_CLAIMED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
DISCARDED_ATTR = "hpo:discarded"
_CREATE_ATTEMPTS = 5

# ---------------------------------------------------------------------------------------------
# Storage


def resolve_storage_url(
    study_name: str, *, cli: str | None, spec: str | None, studies_dir: Path
) -> str:
    """Storage precedence: ``--storage``, ``HPO_STORAGE``, the study file, then SQLite."""
    url = cli or os.environ.get("HPO_STORAGE") or spec
    if not url:
        return f"sqlite:///{studies_dir / f'{study_name}.db'}"
    return _normalize_url(url)


def _normalize_url(url: str) -> str:
    try:
        parsed = sqlalchemy.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        raise StorageError(
            f"storage URL {url!r} is not a valid SQLAlchemy URL "
            "(e.g. sqlite:///studies/x.db or postgresql://user:pass@host/db)"
        ) from None
    # Plain postgresql:// means psycopg2 to SQLAlchemy; we ship psycopg 3.
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and messages."""
    try:
        parsed = sqlalchemy.make_url(url)
    except sqlalchemy.exc.ArgumentError:
        return "<invalid storage URL>"
    return parsed.render_as_string(hide_password=True)


def create_storage(
    url: str,
    *,
    heartbeat_interval: int | None = 60,
    grace_period: int | None = None,
    max_retry: int = 2,
    create_tables: bool = True,
) -> RDBStorage:
    """An RDBStorage with heartbeats, stale-trial retry, SQLite busy timeout, Postgres pre-ping.

    Raises:
        StorageError: the database cannot be reached or opened (password masked).
    """
    url = _normalize_url(url)
    parsed = sqlalchemy.make_url(url)
    engine_kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            db_dir = Path(parsed.database).parent
            if not db_dir.exists():
                raise StorageError(f"storage {mask_url(url)}: folder {db_dir} does not exist")
        # Many workers on one machine share the file: wait for the lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
        engine_kwargs["pool_size"] = 2
        engine_kwargs["max_overflow"] = 4
    callback = None
    if heartbeat_interval:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    heartbeat_stale_trial_callback=callback,
                    skip_table_creation=not create_tables,
                )
        except (sqlalchemy.exc.SQLAlchemyError, ImportError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            # Workers started together on a new database race to create its tables; the
            # losers see the winner's rows and simply open the storage again.
            racing = isinstance(exc, sqlalchemy.exc.IntegrityError) or "already exists" in reason
            if racing and attempt + 1 < _CREATE_ATTEMPTS:
                time.sleep(0.2 * (attempt + 1))
                continue
            raise StorageError(f"cannot open storage {mask_url(url)}: {reason}") from None
    raise AssertionError("unreachable")


def load_study(name: str, storage: str | RDBStorage) -> optuna.Study:
    """Load an existing study; StorageError naming the studies that exist when it does not."""
    if isinstance(storage, str):
        parsed = sqlalchemy.make_url(_normalize_url(storage))
        database = parsed.database
        is_file_db = parsed.get_backend_name() == "sqlite" and database not in (None, ":memory:")
        if is_file_db and not Path(str(database)).is_file():
            raise StorageError(
                f"no study named {name!r}: storage {mask_url(storage)} does not exist "
                "(run `hpo run` first, or pass --storage / HPO_STORAGE)"
            )
        storage = create_storage(storage, heartbeat_interval=None)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
        known = ", ".join(names) if names else "none"
        raise StorageError(
            f"no study named {name!r} in {mask_url(storage.url)}; studies there: {known}"
        ) from None


def study_counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (lower-case state names), without discarded over-cap trials."""
    counts = {state.name.lower(): 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        if DISCARDED_ATTR in trial.user_attrs:
            continue
        counts[trial.state.name.lower()] += 1
    return counts


# ---------------------------------------------------------------------------------------------
# Samplers and pruners, built from the study file by every worker (they are not stored)

SAMPLERS: Registry[optuna.samplers.BaseSampler] = Registry("sampler", runtime=("grid",))
PRUNERS: Registry[optuna.pruners.BasePruner] = Registry("pruner")


@SAMPLERS.register("tpe")
def tpe(
    grid: Callable[[], Mapping[str, list[Any]]],
    *,
    seed: int | None = None,
    n_startup_trials: int = 10,
    multivariate: bool = True,
    group: bool = True,
    constant_liar: bool = True,
) -> optuna.samplers.BaseSampler:
    """TPE; ``group`` models conditional branches (scheduler/loss parameters) jointly."""
    return optuna.samplers.TPESampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        multivariate=multivariate,
        group=group,
        constant_liar=constant_liar,
    )


@SAMPLERS.register("random")
def random(
    grid: Callable[[], Mapping[str, list[Any]]], *, seed: int | None = None
) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=seed)


@SAMPLERS.register("cmaes")
def cmaes(
    grid: Callable[[], Mapping[str, list[Any]]],
    *,
    seed: int | None = None,
    n_startup_trials: int = 1,
    restart_strategy: Literal["ipop", "bipop"] | None = None,
) -> optuna.samplers.BaseSampler:
    """CMA-ES on the continuous parameters; categorical ones fall back to random sampling."""
    return optuna.samplers.CmaEsSampler(
        seed=seed,
        n_startup_trials=n_startup_trials,
        restart_strategy=restart_strategy,
        warn_independent_sampling=False,
    )


@SAMPLERS.register("grid")
def grid(
    grid: Callable[[], Mapping[str, list[Any]]], *, seed: int | None = None
) -> optuna.samplers.BaseSampler:
    """Every combination of the (choice and linear int) parameters, in random order."""
    return optuna.samplers.GridSampler(dict(grid()), seed=seed)


@PRUNERS.register("median")
def median(
    *, n_startup_trials: int = 5, n_warmup_steps: int = 0, interval_steps: int = 1
) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(
        n_startup_trials=n_startup_trials,
        n_warmup_steps=n_warmup_steps,
        interval_steps=interval_steps,
    )


@PRUNERS.register("percentile")
def percentile(
    *,
    percentile: float = 25.0,
    n_startup_trials: int = 5,
    n_warmup_steps: int = 0,
    interval_steps: int = 1,
) -> optuna.pruners.BasePruner:
    return optuna.pruners.PercentilePruner(
        percentile,
        n_startup_trials=n_startup_trials,
        n_warmup_steps=n_warmup_steps,
        interval_steps=interval_steps,
    )


@PRUNERS.register("successive_halving")
def successive_halving(
    *,
    min_resource: int | Literal["auto"] = "auto",
    reduction_factor: int = 4,
    min_early_stopping_rate: int = 0,
) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=min_resource,
        reduction_factor=reduction_factor,
        min_early_stopping_rate=min_early_stopping_rate,
    )


@PRUNERS.register("hyperband")
def hyperband(
    *,
    min_resource: int = 1,
    max_resource: int | Literal["auto"] = "auto",
    reduction_factor: int = 3,
) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=min_resource, max_resource=max_resource, reduction_factor=reduction_factor
    )


@PRUNERS.register("wilcoxon")
def wilcoxon(*, p_threshold: float = 0.1, n_startup_steps: int = 2) -> optuna.pruners.BasePruner:
    """Across folds: a trial is compared fold by fold with the best trial so far."""
    return optuna.pruners.WilcoxonPruner(p_threshold=p_threshold, n_startup_steps=n_startup_steps)


@PRUNERS.register("none")
def none() -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def build_sampler(
    spec: Mapping[str, Any], grid: Callable[[], Mapping[str, list[Any]]]
) -> optuna.samplers.BaseSampler:
    params = dict(spec)
    name = params.pop("name")
    with warnings.catch_warnings():  # group=True and Wilcoxon are marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return SAMPLERS.create(name, grid=grid, **params)


def build_pruner(spec: Mapping[str, Any]) -> optuna.pruners.BasePruner:
    params = dict(spec)
    name = params.pop("name")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return PRUNERS.create(name, **params)


# ---------------------------------------------------------------------------------------------
# The worker loop


class _OverCap(Exception):
    """This worker lost the race for the study's last slot; its trial is given up."""


@dataclass
class WorkerResult:
    """What one worker did."""

    ran: list[int] = field(default_factory=list)
    stopped_by: str = "n_trials"


def _claimed_before(study: optuna.Study, number: int) -> int:
    return sum(
        1
        for t in study.get_trials(deepcopy=False, states=_CLAIMED)
        if t.number < number and DISCARDED_ATTR not in t.user_attrs
    )


def run_worker(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    *,
    n_trials: int | None,
    timeout: float | None = None,
    max_consecutive_failures: int = 5,
    on_trial_end: Callable[[FrozenTrial], None] | None = None,
    on_wait: Callable[[int], None] | None = None,
    poll_seconds: float = 2.0,
) -> WorkerResult:
    """Run trials until the study holds ``n_trials`` finished trials (or ``timeout`` passes).

    Args:
        study: The shared study.
        objective: Trial -> value; ``optuna.TrialPruned`` prunes, other exceptions fail the trial
            (recorded with its reason) and the worker goes on.
        n_trials: Study-wide total of complete + pruned trials; None runs until timeout.
        timeout: Seconds after which no new trial is started.
        max_consecutive_failures: Stop after this many failed trials in a row.
        on_trial_end: Called with each trial this worker finished.
        on_wait: Called with the number of trials other workers are running while waiting.
        poll_seconds: How often a waiting worker looks at the study.

    Raises:
        KeyboardInterrupt: after Optuna has marked the running trial failed.
    """
    result = WorkerResult()
    started = time.monotonic()
    failures = 0

    current: dict[str, int] = {}

    def guarded(trial: optuna.Trial) -> float:
        current["number"] = trial.number
        if n_trials is not None and _claimed_before(study, trial.number) >= n_trials:
            trial.set_user_attr(DISCARDED_ATTR, "another worker took the study's last trial")
            raise _OverCap
        return objective(trial)

    while True:
        if timeout is not None and time.monotonic() - started >= timeout:
            result.stopped_by = "timeout"
            return result
        if n_trials is not None:
            trials = study.get_trials(deepcopy=False, states=_CLAIMED)
            claimed = [t for t in trials if DISCARDED_ATTR not in t.user_attrs]
            finished = sum(1 for t in claimed if t.state in FINISHED)
            if finished >= n_trials:
                result.stopped_by = "n_trials"
                return result
            waiting = sum(1 for t in claimed if t.state == TrialState.WAITING)
            if len(claimed) >= n_trials and not waiting:
                running = len(claimed) - finished
                if on_wait is not None:
                    on_wait(running)
                time.sleep(poll_seconds)
                # A worker that died leaves a RUNNING trial; failing it (once its heartbeat is
                # stale) re-queues it, which frees the slot this worker waits for.
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
                continue
        current.clear()
        study.optimize(guarded, n_trials=1, catch=(Exception,))
        if "number" not in current:
            continue
        trial = study.get_trials(deepcopy=False)[current["number"]]
        if DISCARDED_ATTR in trial.user_attrs:
            continue
        result.ran.append(trial.number)
        failures = failures + 1 if trial.state == TrialState.FAIL else 0
        if on_trial_end is not None:
            on_trial_end(trial)
        if failures >= max_consecutive_failures:
            result.stopped_by = "failures"
            return result
        sampler = study.sampler
        if isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study):
            result.stopped_by = "grid"
            return result


def study_file(
    name: str, *, config: Path | None = None, studies_dir: Path = Path("studies")
) -> Path:
    """The study file of study ``name``: ``--config`` if given, else ``studies/NAME.yaml``."""
    if config is not None:
        return config
    return studies_dir / f"{name}.yaml"


def storage_for(name: str, *, cli: str | None, config: Path | None = None) -> str:
    """Storage URL of an existing study for commands that only read it (export, show, dashboard).

    Same precedence as ``hpo run``: ``--storage``, ``HPO_STORAGE``, the study file's
    ``study.storage`` (when the file exists), then ``sqlite:///studies/NAME.db``.
    """
    from hpo.config import load_yaml

    path = study_file(name, config=config)
    spec_url = None
    if cli is None and not os.environ.get("HPO_STORAGE") and path.is_file():
        section = load_yaml(path).get("study") or {}
        spec_url = section.get("storage") if isinstance(section, dict) else None
    return resolve_storage_url(name, cli=cli, spec=spec_url, studies_dir=path.parent)


# ---------------------------------------------------------------------------------------------
# Creating and joining a study

SPEC_ATTR = "hpo:spec"
DATA_FINGERPRINT_ATTR = "hpo:data_fingerprint"
# Settings that may differ between workers: where the data lives on each machine, caching.
_PER_WORKER_KEYS = ("root", "cache_dir", "skip_bad_files")


def comparable_spec(spec: Any) -> dict[str, Any]:
    """The parts of a study file every worker must agree on (a JSON-able mapping)."""
    data = {
        k: v
        for k, v in spec.base_config().data.model_dump(mode="json").items()
        if k not in _PER_WORKER_KEYS
    }
    return {
        "direction": spec.study.direction,
        "data": data,
        "train": spec.base_config().train.model_dump(mode="json"),
        "search_space": _jsonable(spec.search_space),
    }


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def _first_difference(stored: Any, ours: Any, path: str = "") -> str | None:
    if isinstance(stored, dict) and isinstance(ours, dict):
        for key in sorted(set(stored) | set(ours)):
            sub = f"{path}.{key}" if path else str(key)
            if key not in stored:
                return f"{sub} is new here (not in the stored study)"
            if key not in ours:
                return f"{sub} is missing here (stored: {stored[key]!r})"
            diff = _first_difference(stored[key], ours[key], sub)
            if diff:
                return diff
        return None
    if stored != ours:
        return f"{path}: stored {stored!r}, here {ours!r}"
    return None


def open_study(
    spec: Any,
    storage: RDBStorage,
    *,
    data_fingerprint: str,
    allow_mismatch: bool = False,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Create the study or join it; a worker whose study file or data differ is refused.

    Raises:
        ConfigError: the stored search space or fixed settings differ from this worker's.
        DataError: the stored data fingerprint differs from this worker's data.
    """
    from hpo.exceptions import DataError

    study = optuna.create_study(
        storage=storage,
        study_name=spec.name,
        direction=spec.study.direction,
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    ours = comparable_spec(spec)
    attrs = study.user_attrs
    if SPEC_ATTR not in attrs:
        study.set_user_attr(SPEC_ATTR, ours)
        study.set_user_attr(DATA_FINGERPRINT_ATTR, data_fingerprint)
        return study
    if allow_mismatch:
        return study
    diff = _first_difference(attrs[SPEC_ATTR], ours)
    if diff is not None:
        raise ConfigError(
            f"study {spec.name!r} in {mask_url(storage.url)} was started with a different study "
            f"file: {diff}; use the same file (and --set flags) as the other workers, a new "
            "study name, or --allow-mismatch to join anyway"
        )
    stored_fp = attrs.get(DATA_FINGERPRINT_ATTR)
    if stored_fp is not None and stored_fp != data_fingerprint:
        raise DataError(
            f"study {spec.name!r} was started on different data (fingerprint {stored_fp}, here "
            f"{data_fingerprint}): check data.root and the corrections file, or pass "
            "--allow-mismatch to join anyway"
        )
    return study
