"""One worker's tuning session: study file + storage + data -> trials run on the shared study."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from hpo.components import PRUNERS, SAMPLERS
from hpo.config import DataConfig, TrainConfig, blame_override, parse_overrides
from hpo.data import LoadedData, Samples, data_fingerprint, load_samples, load_training_data
from hpo.exceptions import ConfigError
from hpo.interrupts import raise_if_stopped
from hpo.lr_check import ScheduleRange, schedule_ranges
from hpo.objective import Objective, trial_config
from hpo.publish import Publisher, check_publishing, prepare_trackers
from hpo.space import Space, parse_space
from hpo.study import (
    StudySpec,
    WarmStart,
    WarmStartPlan,
    WorkerResult,
    apply_warm_start,
    build_pruner,
    build_sampler,
    enqueue_configs,
    finished_count,
    last_fail_reason,
    list_study_names,
    load_study_spec,
    mask_url,
    open_storage,
    open_study,
    plan_warm_start,
    resolve_storage_url,
    run_worker,
    sqlite_file,
    study_file,
)
from hpo.train.weights import check_weights

__all__ = ["DryRun", "TuneSession", "dry_run", "prepare_session", "sampler_warnings"]

_log = logging.getLogger(__name__)


@dataclass
class TuneSession:
    """Everything a worker needs to run trials."""

    spec: StudySpec
    space: Space
    storage_url: str
    study: optuna.Study
    objective: Objective
    data_fingerprint: str
    samples: Samples
    """The data set's file table (decoding happens only when trials need the images)."""
    enqueued: int = 0
    """``study.enqueue`` entries this run enqueued (0 when the study had them all)."""
    warm_start: WarmStart | None = None
    """What ``--warm-start`` did (None without it)."""

    @property
    def masked_storage(self) -> str:
        return mask_url(self.storage_url)

    def run(
        self,
        *,
        n_trials: int | None,
        timeout: float | None = None,
        on_trial_end: Callable[[FrozenTrial], None] | None = None,
        on_wait: Callable[[int], None] | None = None,
    ) -> WorkerResult:
        # Pictures, notes and tracker runs of every trial this worker runs.
        publisher = Publisher.create(self.spec, self.study, self.samples)
        self.objective.on_epoch = publisher.epoch
        objective = publisher.wrap(self.objective)

        # Safe points between trials: a stop that waited for a finished trial to be told, or
        # whose raise Python swallowed, is raised there (hpo.interrupts).
        def trial_ended(trial: FrozenTrial) -> None:
            if on_trial_end is not None:
                on_trial_end(trial)
            raise_if_stopped()

        def waiting(running: int) -> None:
            if on_wait is not None:
                on_wait(running)
            raise_if_stopped()

        raise_if_stopped()
        result = run_worker(
            self.study,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            max_consecutive_failures=self.spec.study.max_consecutive_failures,
            on_trial_end=trial_ended,
            on_wait=waiting,
            exhaustible=SAMPLERS.info(self.spec.study.sampler["name"]).exhaustible,
        )
        raise_if_stopped()
        return result

    def raise_for_failures(self, result: WorkerResult) -> None:
        """Raise if the worker stopped after too many failed trials in a row.

        Raises:
            ConfigError: Naming how many failed in a row and the last one's reason.
        """
        if result.stopped_by == "failures":
            raise ConfigError(
                f"stopped after {self.spec.study.max_consecutive_failures} failed trials in a "
                f"row; last reason: {last_fail_reason(self.study)}"
            )


@dataclass
class DryRun:
    """What ``hpo run --dry-run`` shows: the checked study file and one sampled trial."""

    spec: StudySpec
    space: Space
    masked_storage: str
    sample: TrainConfig
    sampled_values: dict[str, Any]
    data: Samples
    schedules: list[ScheduleRange]
    """The final-to-initial learning-rate ratios each schedule of the space allows."""
    enqueue: list[dict[str, Any]]
    """The ``study.enqueue`` entries as Optuna parameters (checked against the space)."""
    warm_start: WarmStart | None = None
    """What ``--warm-start`` would import into a study that has not imported it yet."""
    warnings: list[str] = field(default_factory=list)
    """What the study file allows but will not do what it seems to (:func:`sampler_warnings`)."""


def _load_spec(name: str, config: Path | None, overrides: Iterable[str]) -> StudySpec:
    path = study_file(name, config=config)
    if not path.is_file() and config is None:
        available = (
            sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        )
        known = ", ".join(available) if available else "none"
        raise ConfigError(f"study file {path} not found; studies in {path.parent}/: {known}")
    return load_study_spec(path, name=name, overrides=overrides)


def dry_run(
    name: str,
    *,
    config: Path | None = None,
    overrides: Iterable[str] = (),
    storage: str | None = None,
    warm_start: str | None = None,
    warm_start_storage: str | None = None,
) -> DryRun:
    """Check a study file and its data, and sample one trial, touching no storage.

    The sample comes from the study's own sampler on an in-memory study, so it is a point the
    real study could draw; nothing is decoded and nothing is trained or written. With
    ``warm_start`` the source study is read and checked, and what would fit is counted.

    Raises:
        ConfigError: the study file, an override or the search space is invalid.
        DataError: the data set cannot be read.
    """
    overrides = tuple(overrides)
    spec = _load_spec(name, config, overrides)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(spec.path))
    base = spec.base_config()
    with _blame_overrides(spec, overrides):
        _check_pruner(spec, [base, *space.extreme_configs(spec.fixed_dict(), str(spec.path))])
    check_publishing(spec)
    samples = load_samples(base.data)
    with _blame_overrides(spec, overrides):
        _check_against_data(spec, space, samples)
    assert spec.path is not None
    url = resolve_storage_url(
        name, cli=storage, spec=spec.study.storage, studies_dir=spec.path.parent
    )
    plan = _plan_warm_start(spec, space, url, storage, warm_start, warm_start_storage)
    study = optuna.create_study(
        sampler=build_sampler(spec.study.sampler, grid=space.grid),
        direction=spec.study.direction,
    )
    trial = study.ask()
    values = space.sample(trial)
    schedules = schedule_ranges(space, spec.fixed_dict(), source=str(spec.path))
    return DryRun(
        spec=spec,
        space=space,
        masked_storage=mask_url(url),
        sample=trial_config(spec, space, trial),
        sampled_values=values,
        data=samples,
        schedules=schedules,
        enqueue=spec.enqueue_params(),
        warm_start=plan.preview() if plan is not None else None,
        warnings=sampler_warnings(spec),
    )


def sampler_warnings(spec: StudySpec) -> list[str]:
    """A sampler that models complete trials only, under a pruner that stops most trials.

    Optuna's GP and CMA-ES samplers ignore pruned trials, so they sample at random until
    ``n_startup_trials`` trials have completed; with successive halving from epoch 2 that was
    never in 50 trials on the demo (2-7 complete): the study is random search.
    """
    name = spec.study.sampler["name"]
    pruner = spec.study.pruner["name"]
    if not SAMPLERS.info(name).complete_only or pruner == "none":
        return []
    params = {k: v for k, v in spec.study.sampler.items() if k not in ("name", "seed")}
    startup = SAMPLERS.validate(name, params, where="study.sampler").get("n_startup_trials")
    until = f"until {startup} trials have completed" if startup else "until trials complete"
    return [
        f"{spec.path}: study.sampler {name} learns from complete trials only, and the "
        f"{pruner} pruner stops most trials early: it samples at random {until}. Use tpe "
        "(it learns from pruned trials too), or study.pruner {name: none}"
    ]


def _plan_warm_start(
    spec: StudySpec,
    space: Space,
    url: str,
    storage: str | None,
    warm_start: str | None,
    warm_start_storage: str | None,
) -> WarmStartPlan | None:
    """Read and check ``--warm-start``'s study (writing nothing); None without the flag."""
    if warm_start is None:
        return None
    assert spec.path is not None
    source_url = warm_start_storage or resolve_storage_url(
        warm_start, cli=storage, spec=spec.study.storage, studies_dir=spec.path.parent
    )
    return plan_warm_start(warm_start, source_url, spec=spec, space=space, this_url=url)


@contextlib.contextmanager
def _blame_overrides(spec: StudySpec, overrides: tuple[str, ...]) -> Iterator[None]:
    """A check's error about a key that a ``--set`` gave names that ``--set``, not the file."""
    try:
        yield
    except ConfigError as exc:
        blamed = blame_override(exc, str(spec.path), parse_overrides(overrides))
        if blamed is exc:
            raise
        raise blamed from None


def _check_pruner(spec: StudySpec, configs: Iterable[TrainConfig]) -> None:
    """A Wilcoxon pruner that could never stop a trial before its last fold is a mistake.

    It tests a trial's fold scores against the best trial's, and n folds can give no one-sided
    p-value below ``0.5 ** n``: with Optuna's default ``p_threshold`` 0.1 a trial is stopped
    after 4 folds at the earliest (BENCHMARKS.md measured it saving 1 fold of 5).

    Args:
        spec: The study file.
        configs: Every config a trial may train (the fixed one and each searched extreme).

    Raises:
        ConfigError: every fold count a trial may train is reached before the pruner can act.
    """
    name = spec.study.pruner["name"]
    if name != "wilcoxon":
        return
    params = PRUNERS.validate(name, {k: v for k, v in spec.study.pruner.items() if k != "name"})
    threshold, startup = float(params["p_threshold"]), int(params["n_startup_steps"])
    earliest = max(2, startup)  # Optuna's WilcoxonPruner tests at least 2 steps
    while 0.5**earliest >= threshold:
        earliest += 1
    most = max(c.train.kfold.fold_count for c in configs)
    if earliest < most:
        return
    if max(2, startup) >= most:
        remedy = f"set n_startup_steps below {most}"
    else:
        remedy = f"set p_threshold above {0.5 ** (most - 1):g} to stop after {most - 1} folds"
    raise ConfigError(
        f"{spec.path}: study.pruner: wilcoxon with p_threshold {threshold:g} and "
        f"n_startup_steps {startup} can stop a trial only after {earliest} folds (n folds give "
        f"no p-value below 0.5^n), but a trial trains at most {most} (train.kfold.folds): it "
        f"would never prune; {remedy}, or train more folds"
    )


def _check_against_data(spec: StudySpec, space: Space, samples: Samples) -> None:
    """Settings that depend on the data, checked for every value a trial may draw.

    Raises:
        ConfigError: ``train.kfold.n_splits`` (fixed, or the largest searched value) exceeds
            the number of people (groups): every trial would fail.
    """
    groups = len(set(samples.groups.tolist()))
    fixed = spec.base_config().train.kfold.n_splits
    searched = space.params.get("train.kfold.n_splits")
    candidates = [int(v) for v in searched.extremes()] if searched is not None else [fixed]
    largest = max(candidates)
    if largest > groups:
        where = "the search space's largest" if searched is not None else "fixed"
        raise ConfigError(
            f"{spec.path}: train.kfold.n_splits ({where} value {largest}) is more than the "
            f"{groups} people/groups in {spec.base_config().data.root}: each fold needs at "
            f"least one; use at most {groups}"
        )


def prepare_session(
    name: str,
    *,
    config: Path | None = None,
    overrides: Iterable[str] = (),
    storage: str | None = None,
    device: torch.device,
    allow_mismatch: bool = False,
    advance: Callable[[int, int], None] | None = None,
    n_trials: int | None = None,
    warm_start: str | None = None,
    warm_start_storage: str | None = None,
    warn: bool = True,
) -> TuneSession:
    """Validate the study file, read the data's file table, open (or create) the study.

    Everything a user can get wrong is checked here, before any trial starts, and before the
    images are decoded: the fingerprint comes from the file table (names, sizes, labels), so a
    worker with a different study file or data is refused at once, and a worker joining a study
    with nothing left to do (``n_trials`` finished trials) decodes nothing. Otherwise the images
    are decoded (or mapped from the shared cache) here, telling ``advance(done, total)`` how
    far, before the first trial; a trial whose data settings differ loads its own data when it
    runs.

    A study that does not exist yet is created only after its images were all decoded: an
    image that cannot be read stops the run before anything about the study is stored (not
    even the SQLite file), so the study is not locked to data that was never usable.

    Once the study is open, the study file's ``study.enqueue`` entries it has not enqueued yet
    are enqueued, and with ``warm_start`` the finished trials of that study (in
    ``warm_start_storage``, else the storage this study's name resolves to with the other
    name) that fit this space are imported, unless they were before (:mod:`hpo.study._warm`).
    The source study is checked (it exists, same direction, not this study) before anything
    is written. ``warn``: log :func:`sampler_warnings` (a supervised worker leaves that to its
    supervisor, which has said it once).
    """
    overrides = tuple(overrides)
    spec = _load_spec(name, config, overrides)
    path = spec.path
    assert path is not None
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    base = spec.base_config()
    configs = [base, *space.extreme_configs(spec.fixed_dict(), str(path))]
    with _blame_overrides(spec, overrides):
        _check_pruner(spec, configs)
    for cfg in configs:
        check_weights(cfg.train.model)  # ImageNet weights cached (or fetched) before any trial
    check_publishing(spec)
    samples = load_samples(base.data)
    with _blame_overrides(spec, overrides):
        _check_against_data(spec, space, samples)
    fingerprint = data_fingerprint(base.data, samples)
    url = resolve_storage_url(name, cli=storage, spec=spec.study.storage, studies_dir=path.parent)
    plan = _plan_warm_start(spec, space, url, storage, warm_start, warm_start_storage)
    loaded: LoadedData | None = None
    database = sqlite_file(url)
    if database is not None and not database.exists():
        loaded = load_training_data(base.data, advance=advance)  # a new study: read first
    rdb = open_storage(
        url,
        heartbeat_interval=spec.study.heartbeat_interval,
        grace_period=spec.study.grace_period,
        max_retry=spec.study.max_retry,
        outage_limit=spec.study.db_outage_seconds,
    )
    if loaded is None and spec.name not in list_study_names(rdb):
        loaded = load_training_data(base.data, advance=advance)  # a new study: read first
    for warning in sampler_warnings(spec) if warn else []:
        _log.warning(warning)
    sampler = build_sampler(spec.study.sampler, grid=space.grid)
    pruner = build_pruner(spec.study.pruner)
    study = open_study(
        spec,
        rdb,
        data_fingerprint=fingerprint,
        allow_mismatch=allow_mismatch,
        sampler=sampler,
        pruner=pruner,
    )
    enqueued = enqueue_configs(study, spec)
    warm = apply_warm_start(study, plan) if plan is not None else None
    if loaded is None and (n_trials is None or finished_count(study) < n_trials):
        loaded = load_training_data(base.data, advance=advance)
    prepare_trackers(spec, study)  # an MLflow store's tables and parent run, before workers

    def load(cfg: DataConfig) -> LoadedData:
        # No progress bar here: a trial runs under the caller's own progress display.
        return loaded if loaded is not None and cfg == base.data else load_training_data(cfg)

    objective = Objective(
        spec,
        space,
        device=device,
        per_fold_pruning=PRUNERS.info(spec.study.pruner["name"]).unit == "fold",
        data_loader=load,
    )
    return TuneSession(
        spec,
        space,
        url,
        study,
        objective,
        fingerprint,
        samples,
        enqueued=len(enqueued),
        warm_start=warm,
    )
