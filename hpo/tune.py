"""One worker's tuning session: study file + storage + data -> trials run on the shared study."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import FrozenTrial

from hpo.components import PRUNERS, SAMPLERS
from hpo.config import TrainConfig
from hpo.data import Samples, data_fingerprint, load_samples, load_training_data
from hpo.exceptions import ConfigError
from hpo.objective import Objective, trial_config
from hpo.space import Space, parse_space
from hpo.study import (
    StudySpec,
    WorkerResult,
    build_pruner,
    build_sampler,
    load_study_spec,
    mask_url,
    open_storage,
    open_study,
    resolve_storage_url,
    run_worker,
    study_file,
)

__all__ = ["DryRun", "TuneSession", "dry_run", "prepare_session"]


@dataclass
class TuneSession:
    """Everything a worker needs to run trials."""

    spec: StudySpec
    space: Space
    storage_url: str
    study: optuna.Study
    objective: Objective
    data_fingerprint: str

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
        return run_worker(
            self.study,
            self.objective,
            n_trials=n_trials,
            timeout=timeout,
            max_consecutive_failures=self.spec.study.max_consecutive_failures,
            on_trial_end=on_trial_end,
            on_wait=on_wait,
            exhaustible=SAMPLERS.info(self.spec.study.sampler["name"]).exhaustible,
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
) -> DryRun:
    """Check a study file and its data, and sample one trial, touching no storage.

    The sample comes from the study's own sampler on an in-memory study, so it is a point the
    real study could draw; nothing is decoded and nothing is trained or written.

    Raises:
        ConfigError: the study file, an override or the search space is invalid.
        DataError: the data set cannot be read.
    """
    spec = _load_spec(name, config, overrides)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(spec.path))
    samples = load_samples(spec.base_config().data)
    assert spec.path is not None
    url = resolve_storage_url(
        name, cli=storage, spec=spec.study.storage, studies_dir=spec.path.parent
    )
    study = optuna.create_study(
        sampler=build_sampler(spec.study.sampler, grid=space.grid),
        direction=spec.study.direction,
    )
    trial = study.ask()
    values = space.sample(trial)
    return DryRun(
        spec=spec,
        space=space,
        masked_storage=mask_url(url),
        sample=trial_config(spec, space, trial),
        sampled_values=values,
        data=samples,
    )


def prepare_session(
    name: str,
    *,
    config: Path | None = None,
    overrides: Iterable[str] = (),
    storage: str | None = None,
    device: torch.device,
    allow_mismatch: bool = False,
    progress: bool = False,
) -> TuneSession:
    """Validate the study file, load the data, open (or create) the study.

    Everything a user can get wrong is checked here, before any trial starts.
    """
    spec = _load_spec(name, config, overrides)
    path = spec.path
    assert path is not None
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    base = spec.base_config()
    loaded = load_training_data(base.data, progress=progress)
    fingerprint = data_fingerprint(base.data, loaded.samples)
    url = resolve_storage_url(name, cli=storage, spec=spec.study.storage, studies_dir=path.parent)
    rdb = open_storage(
        url,
        heartbeat_interval=spec.study.heartbeat_interval,
        grace_period=spec.study.grace_period,
        max_retry=spec.study.max_retry,
        outage_limit=spec.study.db_outage_seconds,
    )
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
    objective = Objective(
        spec,
        space,
        device=device,
        per_fold_pruning=PRUNERS.info(spec.study.pruner["name"]).unit == "fold",
        data_loader=lambda cfg: loaded if cfg == base.data else load_training_data(cfg),
    )
    return TuneSession(spec, space, url, study, objective, fingerprint)
