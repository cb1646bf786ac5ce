"""Config at the boundary: YAML files and ``--set`` overrides into validated, frozen objects.

``TrainConfig`` is the one config type from tuning to final training: a trial's sampled values
become one, ``hpo export`` writes one, ``hpo train`` reads one. Its YAML form has the sections
``data`` and ``train`` (plus ``provenance`` when exported), so every setting has the same dotted
path (``train.optimizer.lr``) in a study file, a ``--set`` override and an exported config.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from hpo.components import LOSSES, MODELS, OPTIMIZERS, SCHEDULERS, TRACKERS
from hpo.exceptions import ConfigError
from hpo.files import write_text_atomic
from hpo.registry import Registry

__all__ = [
    "AugmentConfig",
    "Component",
    "DataConfig",
    "DataFormat",
    "KFoldConfig",
    "LossSpec",
    "ModelSpec",
    "OptimizerSpec",
    "SchedulerSpec",
    "StrictModel",
    "TrackerSpec",
    "TrainConfig",
    "TrainSettings",
    "apply_overrides",
    "blame_override",
    "dump_yaml",
    "format_validation_error",
    "load_train_config",
    "load_yaml",
    "parse_overrides",
    "tracker_specs",
    "train_config_from_dict",
]


# Default component of each TrainSettings field that names a registry entry.
_COMPONENTS = {
    "model": "small_cnn",
    "optimizer": "adamw",
    "scheduler": "cosine",
    "loss": "cross_entropy",
}


class StrictModel(BaseModel):
    """Frozen, and unknown keys are errors that list the known ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)


_REGISTRIES: dict[str, Registry[Any, Any]] = {
    "model": MODELS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "tracker": TRACKERS,
}


class Component(StrictModel):
    """A registry entry chosen by name with its parameters, written flat in YAML.

    ``{name: focal, gamma: 2.0}`` validates ``gamma`` against the signature of the registered
    ``focal`` factory; missing parameters get the factory's defaults.
    """

    kind: ClassVar[str] = ""
    name: str
    params: Mapping[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _split_flat(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"name": data}
        if not isinstance(data, Mapping):
            raise ValueError(f"expected a mapping with 'name' or a {cls.kind} name")
        if isinstance(data.get("params"), Mapping) and set(data) <= {"name", "params"}:
            return data
        own = set(cls.model_fields) - {"params"}
        out = {k: v for k, v in data.items() if k in own}
        out["params"] = {k: v for k, v in data.items() if k not in own}
        return out

    @model_validator(mode="after")
    def _validate_params(self) -> Component:
        registry = _REGISTRIES[self.kind]
        try:
            params = registry.validate(self.name, self.params)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        object.__setattr__(self, "params", params)
        return self

    @model_serializer(mode="plain")
    def _flat(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for key in type(self).model_fields:
            if key not in ("name", "params"):
                value = getattr(self, key)
                out[key] = str(value) if isinstance(value, Path) else value
        out.update(self.params)
        return out


class ModelSpec(Component):
    """The network: a registered model name, its parameters, optional local weights."""

    kind: ClassVar[str] = "model"
    weights: str | None = None
    """``imagenet`` (the model's torchvision default weights), a torchvision weight name of the
    model (``IMAGENET1K_V2``), or the path of a local state dict; all but the head load."""
    freeze_backbone_epochs: int = Field(0, ge=0)
    """Train only the classifier head for this many first epochs."""

    @model_validator(mode="before")
    @classmethod
    def _weights_text(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and isinstance(data.get("weights"), Path):
            data = {**data, "weights": str(data["weights"])}
        return data

    @model_validator(mode="after")
    def _check_weights_name(self) -> ModelSpec:
        if self.weights == "imagenet" and MODELS.info(self.name).torchvision is None:
            raise ValueError(
                f"weights: imagenet: model {self.name!r} has no torchvision weights; give a "
                f"local state-dict file or pick a torchvision model (hpo models lists them)"
            )
        return self


class OptimizerSpec(Component):
    kind: ClassVar[str] = "optimizer"
    backbone_lr_mult: float = Field(1.0, gt=0.0, le=1.0)
    """The backbone's learning rate is ``lr`` times this; the classifier head trains at ``lr``
    (fine-tuning a pretrained backbone: 0.1 is common)."""


class SchedulerSpec(Component):
    kind: ClassVar[str] = "scheduler"
    warmup_epochs: int = Field(0, ge=0)
    """Linear warm-up from 1 % of the learning rate over this many first epochs (per batch for
    per-batch schedulers)."""

    @model_validator(mode="after")
    def _check_warmup(self) -> SchedulerSpec:
        if self.warmup_epochs and SCHEDULERS.info(self.name).own_warmup:
            raise ValueError(
                f"warmup_epochs: {self.name} warms up by itself (pct_start); use warmup_epochs: 0"
            )
        return self


class LossSpec(Component):
    kind: ClassVar[str] = "loss"


class TrackerSpec(Component):
    """An experiment tracker and its settings (``{name: mlflow, tracking_uri: ...}``), declared
    in :mod:`hpo.components.trackers`; built by ``hpo.trackers``."""

    kind: ClassVar[str] = "tracker"


def tracker_specs(raw: Any, *, where: str) -> tuple[TrackerSpec, ...]:
    """Validate a list of trackers (``study.trackers`` of a study file, ``trackers`` of a
    training config).

    Args:
        raw: The list as read from YAML (None: no trackers).
        where: What to name in errors: the file and the key (``x.yaml: study.trackers``).

    Raises:
        ConfigError: not a list, an entry without a name, an unknown tracker or key, or a value
            of the wrong type, naming ``where[i]``, the key and what is accepted.
    """
    if raw is None:
        return ()
    known = ", ".join(TRACKERS.names())
    if not isinstance(raw, list | tuple):
        raise ConfigError(
            f"{where}: expected a list of trackers like [{{name: mlflow, tracking_uri: ...}}] "
            f"(known: {known})"
        )
    specs = []
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        entry = {"name": item} if isinstance(item, str) else item
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"{at}: expected a mapping with a tracker name (known: {known})")
        params = {k: v for k, v in entry.items() if k != "name"}
        TRACKERS.validate(entry["name"], params, where=at)
        specs.append(TrackerSpec.model_validate(dict(entry)))
    return tuple(specs)


class KFoldConfig(StrictModel):
    """Person-grouped, stratified K-fold."""

    n_splits: int = Field(5, ge=2)
    folds: int | Literal["all"] | list[int] = 1
    """The folds to train: how many of the ``n_splits`` (the first 1..n_splits), ``all``, or
    the fold numbers (from 0, as in ``fold_K``); a run's ``config.yaml`` names those it trained."""

    @model_validator(mode="after")
    def _check_folds(self) -> KFoldConfig:
        if isinstance(self.folds, list):
            bad = [k for k in self.folds if not 0 <= k < self.n_splits]
            if not self.folds or bad or len(set(self.folds)) != len(self.folds):
                raise ValueError(
                    f"folds {self.folds}: expected distinct fold numbers in "
                    f"0..{self.n_splits - 1} (n_splits={self.n_splits})"
                )
        elif self.folds != "all" and not 1 <= self.folds <= self.n_splits:
            raise ValueError(
                f"folds must be between 1 and n_splits={self.n_splits} or 'all', got {self.folds}"
            )
        return self

    @property
    def fold_count(self) -> int:
        return len(self.fold_indices)

    @property
    def fold_indices(self) -> list[int]:
        """The fold numbers ``folds`` selects, ascending."""
        if isinstance(self.folds, list):
            return sorted(self.folds)
        return list(range(self.n_splits if self.folds == "all" else self.folds))


class AugmentConfig(StrictModel):
    """Batch augmentation applied to training images (on the device that trains)."""

    hflip: bool = True
    crop_scale: float = Field(0.9, gt=0.0, le=1.0)
    """Random crops keep at least this fraction of each side (1.0 disables cropping)."""
    color_jitter: float = Field(0.1, ge=0.0, le=1.0)
    """Strength of random brightness/contrast/saturation changes (0 disables)."""
    mixup_alpha: float = Field(0.0, ge=0.0)
    cutmix_alpha: float = Field(0.0, ge=0.0)


DataFormat = Literal["mask", "folder"]
"""The layout names ``data.format`` accepts: the entries of ``hpo.data.LAYOUTS`` (a test keeps
the two equal; spelled out here so validating a config imports no data reader)."""


class DataConfig(StrictModel):
    """Where the images are and how they are read."""

    format: DataFormat = "mask"
    root: Path = Path("data/mask")
    image_size: tuple[int, int] = Field((128, 96), description="[height, width], e.g. [64, 48]")
    """Height and width the images are resized to (once, into the decoded-image cache)."""
    crop: tuple[int, int, int, int] | None = None
    """``[top, left, height, width]``: the box of each original photo kept before resizing
    (``[96, 64, 320, 256]``: the central 320x256 of the 512x384 photos, where the face is).
    Also written ``"96,64,320,256"``, the spelling a search-space choice can hold."""

    @model_validator(mode="before")
    @classmethod
    def _crop_text(cls, data: Any) -> Any:
        crop = data.get("crop") if isinstance(data, Mapping) else None
        if isinstance(crop, str):
            try:
                data = {**data, "crop": [int(v) for v in crop.split(",")]}
            except ValueError:
                raise ValueError(
                    f"crop: expected [top, left, height, width] or 'top,left,height,width', "
                    f"got {crop!r}"
                ) from None
        return data

    corrections: Path | None = None
    """Optional CSV of label corrections (folder or id, field, value), applied at load time."""
    skip_bad_files: bool = False
    """Skip (and list) images that fail to decode instead of stopping."""
    cache_dir: Path | None = None
    """Decoded-image cache; default ``~/.cache/hpo`` (or ``$HPO_CACHE_DIR``)."""

    @model_validator(mode="after")
    def _check_size(self) -> DataConfig:
        if min(self.image_size) < 8:
            raise ValueError(f"image_size must be at least [8, 8], got {list(self.image_size)}")
        if self.crop is not None and (min(self.crop[:2]) < 0 or min(self.crop[2:]) < 1):
            raise ValueError(
                f"crop is [top, left, height, width] with top, left >= 0 and height, width >= 1,"
                f" got {list(self.crop)}"
            )
        return self

    @model_serializer(mode="wrap")
    def _plain(self, handler: Any) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in out.items()
        }


class TrainSettings(StrictModel):
    """How one model is trained: every key is settable in a study file's ``train`` section."""

    model: ModelSpec = Field(default_factory=lambda: ModelSpec(name=_COMPONENTS["model"]))
    epochs: int = Field(5, ge=1)
    batch_size: int = Field(64, ge=1)
    grad_accum_steps: int = Field(1, ge=1)
    optimizer: OptimizerSpec = Field(
        default_factory=lambda: OptimizerSpec(name=_COMPONENTS["optimizer"])
    )
    scheduler: SchedulerSpec = Field(
        default_factory=lambda: SchedulerSpec(name=_COMPONENTS["scheduler"])
    )
    loss: LossSpec = Field(default_factory=lambda: LossSpec(name=_COMPONENTS["loss"]))
    kfold: KFoldConfig = Field(default_factory=KFoldConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    seed: int = 0
    amp: bool = True
    """Mixed precision (bfloat16/float16 autocast); used on CUDA only."""
    channels_last: bool = True
    """channels_last memory format: on CUDA, and on the CPU for the model families measured
    faster in it (``hpo.train.device.use_channels_last``)."""


class TrainConfig(StrictModel):
    """A complete training run: data plus training settings, with provenance when exported."""

    data: DataConfig = Field(default_factory=DataConfig)
    train: TrainSettings = Field(default_factory=TrainSettings)
    provenance: dict[str, Any] | None = None
    trackers: tuple[TrackerSpec, ...] | None = None
    """Experiment trackers ``hpo train`` logs to (``hpo export`` copies the study's)."""

    @model_validator(mode="after")
    def _check_model_input(self) -> TrainConfig:
        info = MODELS.info(self.train.model.name)
        height, width = self.data.image_size
        name = self.train.model.name
        rules = []
        if min(height, width) < info.min_size:
            rules.append(f"at least {info.min_size} pixels a side")
        if height % info.size_multiple or width % info.size_multiple:
            rules.append(f"sides multiple of {info.size_multiple}")
        if info.square and height != width:
            rules.append("square")
        if rules:
            raise ValueError(
                f"data.image_size {[height, width]} does not suit model {name!r}: it needs "
                f"{', '.join(rules)} (e.g. [{max(info.min_size, info.size_multiple)}, "
                f"{max(info.min_size, info.size_multiple)}])"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        out = self.model_dump(mode="json")
        for key in ("provenance", "trackers"):
            if out.get(key) is None:
                out.pop(key, None)
        return out

    def save(self, path: Path) -> None:
        """Write the config as YAML, atomically (:func:`hpo.files.write_text_atomic`)."""
        write_text_atomic(path, dump_yaml(self.to_dict()))


# ---------------------------------------------------------------------------------------------
# Loading, overrides and error formatting


def load_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping; errors name the file (and line for syntax errors)."""
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a mapping at the top level, got {type(data).__name__}"
        )
    return data


def dump_yaml(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, default_flow_style=None, width=99)


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any]]:
    """Parse ``KEY=VALUE`` strings; values are YAML (``[64,48]``, ``3``, ``null``)."""
    out = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. train.epochs=3")
        try:
            parsed = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: value is not valid YAML") from None
        out.append((key.strip(), parsed))
    return out


def apply_overrides(
    raw: Mapping[str, Any], overrides: Iterable[tuple[str, Any]]
) -> dict[str, Any]:
    """Return a deep copy of ``raw`` with each dotted ``key`` set to ``value`` (later wins)."""
    out: dict[str, Any] = copy.deepcopy(dict(raw))
    for key, value in overrides:
        parts = key.split(".")
        node = out
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            component = depth == 1 and parts[0] == "train" and part in _COMPONENTS
            if isinstance(child, str) and component:
                child = {"name": child}
            if child is None:
                # A parameter of a component the file leaves out lands in the default one.
                child = {"name": _COMPONENTS[part]} if component else {}
            if not isinstance(child, dict):
                raise ConfigError(f"--set {key}: {part!r} is not a section")
            node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def format_validation_error(
    exc: pydantic.ValidationError,
    source: str,
    *,
    overrides: Sequence[tuple[str, Any]] = (),
    prefix: str = "",
) -> str:
    """One line naming the file, the dotted key and what was wrong.

    When the wrong key was set by a ``--set`` override (``overrides``, as parsed), the line
    blames the override, not the file, and says what the value should look like. ``prefix``
    is the section a model other than TrainConfig was read from (``study.``).
    """
    err = exc.errors()[0]
    parts = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
    loc = prefix + ".".join(parts)
    msg = err["msg"].removeprefix("Value error, ")
    known = ""
    if err["type"] == "extra_forbidden":
        parent_fields = _known_fields(exc.title, err["loc"])
        known = f"; known keys: {', '.join(parent_fields)}" if parent_fields else ""
    for key, value in reversed(overrides):
        if err["type"] == "extra_forbidden" and loc == key:
            return f"--set {key}: unknown key {loc!r}{known}"
        if loc == key or loc.startswith(key + "."):
            hint = _field_description(exc.title, tuple(key.split(".")))
            shown = _flow(value)
            detail = "missing a value" if err["type"] == "missing" else msg
            at = f" at {loc}" if loc != key else ""
            should = f"; it should be {hint}" if hint else ""
            return f"--set {key}={shown}: {detail}{at}{should}"
    if err["type"] == "extra_forbidden":
        return f"{source}: unknown key {loc!r}{known}"
    if err["type"] == "missing":
        return f"{source}: missing key {loc!r}"
    got = err.get("input")
    shown = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    if not parts:  # a check of the whole config names its keys itself
        return f"{source}: {msg}{shown}"
    return f"{source}: {loc}: {msg}{shown}"


def blame_override(
    error: ConfigError, source: str, overrides: Sequence[tuple[str, Any]]
) -> ConfigError:
    """``error`` (``"<source>: KEY...: what is wrong"``) blamed on the ``--set`` that set KEY.

    Checks after validation (registries, the pruner against the folds, the data) name the
    study file they read; when the key at fault came from a ``--set`` (the same key, a key
    inside it, or the section it lies in), the line names the ``--set`` instead, so the user
    does not look for the mistake in a file that does not hold it. Otherwise ``error`` as is.
    """
    message = str(error)
    head = f"{source}: "
    if not message.startswith(head):
        return error
    rest = message[len(head) :]
    key = re.split(r"[\s:(]", rest, maxsplit=1)[0]
    if not key.startswith(("study.", "data.", "train.")):
        return error
    for name, value in reversed(overrides):
        if name == key or name.startswith(key + ".") or key.startswith(name + "."):
            return ConfigError(f"--set {name}={_flow(value)}: {rest}")
    return error


def _flow(value: Any) -> str:
    """A ``--set`` value as the user typed it, near enough: ``[32]``, ``3``, ``null``, ``abc``."""
    return value if isinstance(value, str) else json.dumps(value)


def _field_description(title: str, loc: tuple[Any, ...]) -> str | None:
    """The ``description`` of the field at ``loc`` in the model named ``title``, if any."""
    models: dict[str, type[BaseModel]] = {"TrainConfig": TrainConfig}
    model: type[BaseModel] | None = models.get(title)
    description = None
    for part in loc:
        if model is None:
            return None
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        description = field.description
        annotation = field.annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return description


def _known_fields(title: str, loc: tuple[Any, ...]) -> list[str]:
    models: dict[str, type[BaseModel]] = {"TrainConfig": TrainConfig, **_SECTIONS}
    model: type[BaseModel] | None = models.get(title)
    for part in loc[:-1]:
        if model is None:
            return []
        field = model.model_fields.get(str(part))
        annotation = field.annotation if field is not None else None
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    if model is None:
        return []
    return [k for k in model.model_fields if k != "params"]


_SECTIONS: dict[str, type[BaseModel]] = {}
"""Models of other sections (the study file's ``study:``), registered by their modules."""


def register_section_model(model: type[BaseModel]) -> type[BaseModel]:
    """Let error messages list the known keys of ``model`` (a class decorator)."""
    _SECTIONS[model.__name__] = model
    return model


def train_config_from_dict(raw: Mapping[str, Any], source: str) -> TrainConfig:
    """Validate a TrainConfig mapping; ``source`` (a file name) is named in errors."""
    try:
        return TrainConfig.model_validate(dict(raw))
    except pydantic.ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None


def load_train_config(path: Path, overrides: Iterable[str] = ()) -> TrainConfig:
    """Load an exported training config or a study file (its fixed ``data``/``train`` settings).

    Args:
        path: YAML file.
        overrides: ``KEY=VALUE`` strings applied before validation.
    """
    raw = load_yaml(path)
    if "study" in raw or "search_space" in raw:
        raw = {k: v for k, v in raw.items() if k in ("data", "train")}
    tracker_specs(raw.get("trackers"), where=f"{path}: trackers")  # one line naming the entry
    raw = apply_overrides(raw, parse_overrides(overrides))
    return train_config_from_dict(raw, str(path))
