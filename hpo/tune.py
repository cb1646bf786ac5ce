"""One worker's tuning session: study file + storage + data -> trials run on the shared study."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from optuna.trial import FrozenTrial

from hpo.config import StudySpec, load_study_spec
from hpo.objective import Objective
from hpo.publish import Publisher
from hpo.space import Space, parse_space
from hpo.study import (
    WorkerResult,
    build_pruner,
    build_sampler,
    create_storage,
    mask_url,
    open_study,
    resolve_storage_url,
    run_worker,
    study_file,
)

__all__ = ["TuneSession", "prepare_session"]


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
        # Pictures, notes and TensorBoard runs of every trial this worker finishes.
        samples = self.objective.data(self.spec.base_config().data).samples
        objective = Publisher.create(self.spec, self.study, samples).wrap(self.objective)
        return run_worker(
            self.study,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            max_consecutive_failures=self.spec.study.max_consecutive_failures,
            on_trial_end=on_trial_end,
            on_wait=on_wait,
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
    from hpo.data import data_fingerprint, load_training_data

    path = study_file(name, config=config)
    if not path.is_file() and config is None:
        available = (
            sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        )
        known = ", ".join(available) if available else "none"
        from hpo.exceptions import ConfigError

        raise ConfigError(f"study file {path} not found; studies in {path.parent}/: {known}")
    spec = load_study_spec(path, name=name, overrides=overrides)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    base = spec.base_config()
    loaded = load_training_data(base.data, progress=progress)
    fingerprint = data_fingerprint(base.data, loaded.samples)
    url = resolve_storage_url(name, cli=storage, spec=spec.study.storage, studies_dir=path.parent)
    rdb = create_storage(
        url,
        heartbeat_interval=spec.study.heartbeat_interval,
        grace_period=spec.study.grace_period,
        max_retry=spec.study.max_retry,
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
        per_fold_pruning=spec.study.pruner.get("name") == "wilcoxon",
        data_loader=lambda cfg: loaded if cfg == base.data else load_training_data(cfg),
    )
    return TuneSession(spec, space, url, study, objective, fingerprint)
