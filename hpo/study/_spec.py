"""The study file: its schema (``study``, ``data``, ``train``, ``search_space``) and loading."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import pydantic
from pydantic import Field

from hpo.components import PRUNERS, SAMPLERS
from hpo.config import (
    StrictModel,
    TrackerSpec,
    TrainConfig,
    apply_overrides,
    blame_override,
    format_validation_error,
    load_yaml,
    parse_overrides,
    register_section_model,
    tracker_specs,
    train_config_from_dict,
)
from hpo.exceptions import ConfigError
from hpo.space import Space, enqueue_params, parse_space
from hpo.study._storage import (
    DEFAULT_OUTAGE_LIMIT,
    check_study_name,
    default_grace_period,
    minimum_grace_period,
    resolve_storage_url,
)

__all__ = [
    "StudySettings",
    "StudySpec",
    "load_study_spec",
    "storage_for",
    "study_file",
    "trackers_for",
]


@register_section_model
class StudySettings(StrictModel):
    """How a study runs (the ``study`` section of a study file)."""

    direction: Literal["maximize", "minimize"] = "maximize"
    storage: str | None = None
    """SQLAlchemy URL; null means ``sqlite:///<study file dir>/<name>.db``."""
    sampler: Mapping[str, Any] = Field(default_factory=lambda: {"name": "tpe"})
    pruner: Mapping[str, Any] = Field(default_factory=lambda: {"name": "median"})
    heartbeat_interval: int = Field(60, ge=1)
    """Seconds between a running trial's heartbeats; a silent trial is failed and retried."""
    grace_period: int | None = Field(None, ge=1)
    """Seconds without a heartbeat before a trial counts as stale; default: the larger of
    2x the interval and the interval plus ``db_outage_seconds``."""
    db_outage_seconds: float = Field(DEFAULT_OUTAGE_LIMIT, gt=0)
    """How long a worker retries while the database is unreachable before it exits."""
    max_retry: int = Field(2, ge=0)
    """How often a trial whose worker died is re-queued with the same parameters."""
    max_consecutive_failures: int = Field(5, ge=1)
    """A worker stops after this many failed trials in a row (a broken study, not a bad config)."""
    artifacts: str | None = None
    """Artifact store of the trials' pictures: a folder or ``s3://bucket/prefix``; null means
    ``<study file dir>/<name>.artifacts``."""
    tensorboard: Path | None = None
    """Folder for TensorBoard event files, one run per trial; null writes none. Short for
    ``trackers: [{name: tensorboard, dir: DIR}]``."""
    enqueue: list[Any] = Field(default_factory=list)
    """Known configurations tried first, once per study: each maps searched keys (the keys of
    ``search_space``) to values; a conditional choice takes its branch name or
    ``{name: BRANCH, PARAM: value}``. Keys left out are sampled."""
    trackers: tuple[TrackerSpec, ...] = ()
    """Experiment trackers (tensorboard, mlflow, wandb), each trial one run in each."""

    def all_trackers(self) -> tuple[TrackerSpec, ...]:
        """``trackers`` with the ``tensorboard`` shorthand as one more."""
        if self.tensorboard is None:
            return self.trackers
        shorthand = TrackerSpec.model_validate(
            {"name": "tensorboard", "dir": str(self.tensorboard)}
        )
        return (*self.trackers, shorthand)


class StudySpec(StrictModel):
    """A validated study file: how it runs, fixed settings and the search space."""

    name: str
    path: Path | None = None
    study: StudySettings = Field(default_factory=StudySettings)
    data: Mapping[str, Any] = Field(default_factory=dict)
    train: Mapping[str, Any] = Field(default_factory=dict)
    search_space: Mapping[str, Any] = Field(default_factory=dict)

    def base_config(self) -> TrainConfig:
        """The fixed settings as a TrainConfig (searched keys keep their fixed defaults)."""
        source = str(self.path) if self.path else self.name
        return train_config_from_dict({"data": dict(self.data), "train": dict(self.train)}, source)

    def space(self) -> Space:
        """The parsed search space."""
        source = str(self.path) if self.path else self.name
        return parse_space(self.search_space, base=self.fixed_dict(), source=source)

    def enqueue_params(self) -> list[dict[str, Any]]:
        """Each ``study.enqueue`` entry as Optuna parameters (``study.enqueue_trial``).

        Raises:
            ConfigError: an entry names a key that is not searched, or a value the search
                space does not hold (naming the file, ``study.enqueue[i]`` and the key).
        """
        if not self.study.enqueue:
            return []
        source = str(self.path) if self.path else self.name
        space, fixed = self.space(), self.fixed_dict()
        return [
            enqueue_params(space, entry, where=f"{source}: study.enqueue[{i}]", fixed=fixed)
            for i, entry in enumerate(self.study.enqueue)
        ]

    def fixed_dict(self) -> dict[str, Any]:
        """The fixed settings as written, the base that sampled values go on top of.

        Components the file leaves out get their default name, so ``train.optimizer.lr`` has a
        component to land in; defaults of their parameters are not filled in, so a sampled
        ``train.optimizer.name: sgd`` does not inherit Adam's ``beta1``.
        """
        base = self.base_config()
        train = copy.deepcopy(dict(self.train))
        for key in ("model", "optimizer", "scheduler", "loss"):
            value = train.get(key)
            if value is None:
                train[key] = {"name": getattr(base.train, key).name}
            elif isinstance(value, str):
                train[key] = {"name": value}
        return {"data": copy.deepcopy(dict(self.data)), "train": train}


_STUDY_SECTIONS = ("study", "data", "train", "search_space")


def load_study_spec(
    path: Path, *, name: str | None = None, overrides: Iterable[str] = ()
) -> StudySpec:
    """Load and validate a study file, applying ``--set`` overrides.

    An override of a fixed setting replaces it; an override of a searched key pins it: the key
    leaves the search space for this run (and so becomes part of the study's fingerprint).
    """
    raw = load_yaml(path)
    unknown = sorted(set(raw) - set(_STUDY_SECTIONS))
    if unknown:
        raise ConfigError(
            f"{path}: unknown section {unknown[0]!r}; known sections: {', '.join(_STUDY_SECTIONS)}"
        )
    for section in _STUDY_SECTIONS:
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping")
    space = dict(raw.get("search_space") or {})
    parsed = parse_overrides(overrides)
    for key, _ in parsed:
        space.pop(key, None)
        if not key.startswith(("study.", "data.", "train.")):
            raise ConfigError(
                f"--set {key}: keys start with study., data. or train. (e.g. train.epochs=3)"
            )
    raw = apply_overrides({k: raw.get(k) or {} for k in ("study", "data", "train")}, parsed)
    try:
        return _validated(path, name, raw, space, parsed)
    except ConfigError as exc:
        blamed = blame_override(exc, str(path), parsed)
        if blamed is exc:
            raise
        raise blamed from None


def _validated(
    path: Path,
    name: str | None,
    raw: dict[str, Any],
    space: dict[str, Any],
    parsed: list[tuple[str, Any]],
) -> StudySpec:
    trackers = tracker_specs(raw["study"].get("trackers"), where=f"{path}: study.trackers")
    if raw["study"].get("tensorboard") is not None and any(
        t.name == "tensorboard" for t in trackers
    ):
        raise ConfigError(
            f"{path}: study.tensorboard and a tensorboard entry of study.trackers are both set; "
            "keep one (study.tensorboard: DIR is short for study.trackers: [{name: tensorboard, "
            "dir: DIR}])"
        )
    try:
        settings = StudySettings.model_validate(raw["study"])
    except pydantic.ValidationError as exc:
        msg = format_validation_error(exc, str(path), overrides=parsed, prefix="study.")
        raise ConfigError(msg) from None
    _check_grace_period(
        settings, str(path), overridden=any(k == "study.grace_period" for k, _ in parsed)
    )
    try:  # the fixed settings must be valid on their own; a bad --set is blamed as such
        TrainConfig.model_validate({"data": raw["data"], "train": raw["train"]})
    except pydantic.ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), overrides=parsed)) from None
    spec = StudySpec(
        name=name or path.stem,
        path=path,
        study=settings,
        data=raw["data"],
        train=raw["train"],
        search_space=space,
    )
    spec.base_config()  # the fixed settings must be valid on their own
    parse_space(space, base=spec.fixed_dict(), source=str(path))
    spec.enqueue_params()  # every entry fits the space
    for kind, registry in (("sampler", SAMPLERS), ("pruner", PRUNERS)):
        entry = dict(getattr(settings, kind))
        entry_name = entry.pop("name", None)
        if not isinstance(entry_name, str):
            raise ConfigError(
                f"{path}: study.{kind}.name is required; known: {', '.join(registry.names())}"
            )
        registry.validate(entry_name, entry, where=f"{path}: study.{kind}")
    return spec


def study_file(
    name: str, *, config: Path | None = None, studies_dir: Path = Path("studies")
) -> Path:
    """The study file of study ``name``: ``--config`` if given, else ``studies/NAME.yaml``.

    Raises:
        ConfigError: ``name`` is not a plain file name (:func:`check_study_name`).
    """
    check_study_name(name)
    if config is not None:
        return config
    return studies_dir / f"{name}.yaml"


def storage_for(name: str, *, cli: str | None, config: Path | None = None) -> str:
    """Storage URL of an existing study for commands that only read it (export, show, dashboard).

    Same precedence as ``hpo run``: ``--storage``, ``HPO_STORAGE``, the study file's
    ``study.storage`` (when the file exists), then ``sqlite:///studies/NAME.db``.
    """
    path = study_file(name, config=config)
    spec_url = None
    if cli is None and not os.environ.get("HPO_STORAGE") and path.is_file():
        section = load_yaml(path).get("study") or {}
        spec_url = section.get("storage") if isinstance(section, dict) else None
    return resolve_storage_url(name, cli=cli, spec=spec_url, studies_dir=path.parent)


def trackers_for(name: str, *, config: Path | None = None) -> tuple[TrackerSpec, ...]:
    """The trackers of study ``name``'s file (``study.trackers`` and ``study.tensorboard``),
    for ``hpo export`` to copy into the exported config; none when there is no file.

    Raises:
        ConfigError: the file's trackers are invalid (naming the entry and key).
    """
    path = study_file(name, config=config)
    if not path.is_file():
        return ()
    section = load_yaml(path).get("study") or {}
    if not isinstance(section, dict):
        return ()
    trackers = tracker_specs(section.get("trackers"), where=f"{path}: study.trackers")
    folder = section.get("tensorboard")
    if folder is not None:
        shorthand = {"name": "tensorboard", "dir": str(folder)}
        trackers = (*trackers, *tracker_specs([shorthand], where=f"{path}: study.tensorboard"))
    return trackers


def _check_grace_period(settings: StudySettings, source: str, *, overridden: bool) -> None:
    """Refuse a grace period that a worker riding out an outage could outlast, trial alive."""
    if settings.grace_period is None:
        return
    hb, outage = settings.heartbeat_interval, settings.db_outage_seconds
    least = minimum_grace_period(hb, outage)
    if settings.grace_period >= least:
        return
    where = f"--set study.grace_period={settings.grace_period}" if overridden else source
    margin = least - hb - math.ceil(outage)
    raise ConfigError(
        f"{where}: study.grace_period {settings.grace_period} is too short: a worker riding "
        f"out a database outage may be silent for heartbeat_interval ({hb}) + "
        f"db_outage_seconds ({outage:g}) + {margin} s for one attempt; use at least {least}, "
        f"or leave it out (default {default_grace_period(hb, outage)})"
    )
