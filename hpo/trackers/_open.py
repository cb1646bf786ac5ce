"""Building trackers from their settings, and refusing those whose library is missing."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from hpo.components import TRACKERS
from hpo.config import TrackerSpec
from hpo.exceptions import ConfigError
from hpo.trackers import _mlflow, _tensorboard, _wandb  # noqa: F401  (register the entries)
from hpo.trackers._base import TrackerContext
from hpo.trackers._set import TrackerSet
from hpo.trackers._tensorboard import require_tensorboard

__all__ = ["open_trackers", "require_trackers"]


def require_trackers(specs: Iterable[TrackerSpec], *, where: str) -> None:
    """Refuse trackers whose library is not installed, naming what to ``pip install``.

    Args:
        specs: The trackers.
        where: The setting that named them (``study.trackers``, ``--tensorboard``).

    Raises:
        ConfigError: One line: the tracker, its missing package and the pip command.
    """
    for spec in specs:
        info = TRACKERS.info(spec.name)
        if spec.name == "tensorboard":
            require_tensorboard(where)  # it writes through torch's SummaryWriter too
            continue
        try:
            importlib.import_module(info.package)
        except ImportError:
            raise ConfigError(
                f"{where}: tracker {spec.name!r} needs the {info.package} package: pip install "
                f'{info.package} (or pip install -e ".[{info.extra}]")'
            ) from None


def open_trackers(specs: Iterable[TrackerSpec], context: TrackerContext) -> TrackerSet:
    """The trackers of ``specs`` for ``context`` (built now; nothing is contacted yet)."""
    return TrackerSet(
        [TRACKERS.create(spec.name, context=context, **spec.params) for spec in specs]
    )
