"""The registries of every pluggable component, declared where the schemas can import them.

This package imports nothing heavy: each registry names the module that fills it, imported on
the first lookup. Adding a sampler or pruner is one decorated function in that module. The
training components (models, losses, optimizers, schedulers) need torch to be built but not to
be validated, so each is also declared here, in a light module of this package
(``hpo.components.losses`` ...): its name, its parameters as a keyword-only signature, and its
info. A config validates against those declarations without importing torch, and registering a
factory checks it against its declaration. What callers must know about an entry travels in
its info:

- a model's ``head``: the qualified name of the classifier layer to resize and keep trainable;
- a scheduler's ``step``: ``epoch`` (after each epoch's evaluation) or ``batch`` (after each
  optimizer step), and ``needs_metric``: whether it steps on the validation macro-F1;
- a pruner's ``unit``: ``epoch`` (one report per epoch, step ``fold * epochs + epoch``) or
  ``fold`` (one report per fold, step = fold);
- a sampler's ``exhaustible``: whether it can run out of points (grid), ending the worker;
- a tracker's ``package`` and ``extra``: the library it needs and the extra that installs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from hpo.registry import Registry

if TYPE_CHECKING:
    import optuna
    import torch
    from torch import nn
    from torch.optim.lr_scheduler import LRScheduler

__all__ = [
    "LOSSES",
    "MODELS",
    "OPTIMIZERS",
    "PRUNERS",
    "SAMPLERS",
    "SCHEDULERS",
    "TRACKERS",
    "ModelInfo",
    "PrunerInfo",
    "SamplerInfo",
    "SchedulerInfo",
    "TrackerInfo",
]


@dataclass(frozen=True)
class ModelInfo:
    """A model entry's facts.

    Attributes:
        head: Qualified module name of the classifier head (resized to the data's classes,
            kept trainable while the backbone is frozen, excluded from a backbone multiplier).
        torchvision: The torchvision model it builds, whose weights ``train.model.weights:
            imagenet`` (or a torchvision weight name) loads; None for hpo's own models.
        min_size: Smallest image height and width it accepts.
        size_multiple: Image height and width must be multiples of this (ViT: the patch).
        square: It needs square images (ViT).
        sized: Its factory takes the image size (``image_size``): the network is built for it.
        cpu_channels_last: Its CPU train step is faster in channels_last (depthwise and
            small-channel convolutions in oneDNN); on CUDA every model uses it.
    """

    head: str
    torchvision: str | None = None
    min_size: int = 1
    size_multiple: int = 1
    square: bool = False
    sized: bool = False
    cpu_channels_last: bool = False


@dataclass(frozen=True)
class SchedulerInfo:
    """A scheduler entry's facts.

    Attributes:
        step: ``epoch``: stepped once after each epoch; ``batch``: after each optimizer step
            (its factory then receives the total number of optimizer steps).
        needs_metric: Stepped with the epoch's validation macro-F1 (``plateau``).
        own_warmup: It warms up by itself (``onecycle``): ``warmup_epochs`` is refused.
    """

    step: Literal["epoch", "batch"] = "epoch"
    needs_metric: bool = False
    own_warmup: bool = False


@dataclass(frozen=True)
class PrunerInfo:
    """A pruner entry's facts.

    Attributes:
        unit: ``epoch``: the objective reports every epoch's validation macro-F1 at step
            ``fold * epochs + epoch``; ``fold``: it reports each fold's score at step = fold,
            and a pruned trial returns the mean of its folds (Optuna's advice for Wilcoxon).
    """

    unit: Literal["epoch", "fold"] = "epoch"


@dataclass(frozen=True)
class SamplerInfo:
    """A sampler entry's facts.

    Attributes:
        exhaustible: It can run out of new points (grid): the worker stops when it has.
        seed_per_trial: Its ``seed`` is re-derived for every trial from the study seed and the
            trial number, so workers sharing a study file do not repeat each other's points.
            False where the seed must stay one per study (grid: it fixes the grid's order, and
            the sampler already hands each trial an unvisited point).
        complete_only: It models complete trials only (Optuna's GP and CMA-ES samplers): a
            pruned trial teaches it nothing, so under a pruner it samples at random until
            ``n_startup_trials`` trials have completed.
    """

    exhaustible: bool = False
    seed_per_trial: bool = True
    complete_only: bool = False


@dataclass(frozen=True)
class TrackerInfo:
    """A tracker entry's facts.

    Attributes:
        package: The module it imports (``mlflow``); naming the tracker without it installed is
            refused before any trial.
        extra: hpo's optional extra that installs it (``pip install -e ".[mlflow]"``).
    """

    package: str
    extra: str


@dataclass(frozen=True)
class _NoInfo:
    pass


MODELS: Registry[nn.Module, ModelInfo] = Registry(
    "model",
    runtime=("num_classes", "weights", "image_size"),
    loader="hpo.train.models",
    declarations="hpo.components.models",
)
LOSSES: Registry[nn.Module, Any] = Registry(
    "loss",
    runtime=("num_classes", "class_counts"),
    loader="hpo.train.losses",
    declarations="hpo.components.losses",
    default_info=_NoInfo(),
)
OPTIMIZERS: Registry[torch.optim.Optimizer, Any] = Registry(
    "optimizer",
    runtime=("params",),
    loader="hpo.train.optim",
    declarations="hpo.components.optim",
    default_info=_NoInfo(),
)
SCHEDULERS: Registry[LRScheduler, SchedulerInfo] = Registry(
    "scheduler",
    runtime=("optimizer", "epochs", "steps"),
    loader="hpo.train.optim",
    declarations="hpo.components.optim",
    default_info=SchedulerInfo(),
)
SAMPLERS: Registry[optuna.samplers.BaseSampler, SamplerInfo] = Registry(
    "sampler", runtime=("grid",), loader="hpo.study._samplers", default_info=SamplerInfo()
)
PRUNERS: Registry[optuna.pruners.BasePruner, PrunerInfo] = Registry(
    "pruner", loader="hpo.study._pruners", default_info=PrunerInfo()
)
TRACKERS: Registry[Any, TrackerInfo] = Registry(
    "tracker",
    runtime=("context",),
    loader="hpo.trackers",
    declarations="hpo.components.trackers",
)
