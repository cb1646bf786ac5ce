"""The one interface of an experiment tracker, and what it is told about a run."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import optuna

__all__ = [
    "EPOCH_METRICS",
    "RunEnd",
    "RunInfo",
    "Tracker",
    "TrackerContext",
    "epoch_metrics",
    "flat_settings",
]

EPOCH_METRICS = (
    ("train_loss", "train_loss"),
    ("val_loss", "val_loss"),
    ("macro_f1", "val_macro_f1"),
    ("accuracy", "val_accuracy"),
    ("lr", "lr"),
)
"""``EpochResult.to_dict()`` key -> metric name; a run logs ``NAME/PART`` (``val_macro_f1/fold_0``)
at step = epoch (from 1)."""

State = Literal["COMPLETE", "PRUNED", "FAIL", "STOPPED"]


def epoch_metrics(part: str, result: Mapping[str, Any]) -> dict[str, float]:
    """One epoch's metrics as ``NAME/PART`` -> value (those the epoch has)."""
    out = {}
    for key, name in EPOCH_METRICS:
        value = result.get(key)
        if value is not None:
            out[f"{name}/{part}"] = float(value)
    return out


def flat_settings(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys (``train.optimizer.lr``); None values are left out."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_settings(value, f"{name}."))
        elif value is not None:
            out[name] = value
    return out


@dataclass(frozen=True)
class TrackerContext:
    """What a tracker is built for.

    Attributes:
        study_name: The study (a trial's, or the one an exported config came from); None for a
            training config that names none.
        study: The open study, where runs are trials (an MLflow tracker keeps its parent run's
            id on it); None for ``hpo train``.
    """

    study_name: str | None
    study: optuna.Study | None = None


@dataclass(frozen=True)
class RunInfo:
    """One tracker run: a trial of a study, or one ``hpo train``.

    Attributes:
        kind: ``trial`` or ``train`` (W&B's job type, MLflow's ``hpo.job`` tag).
        name: The run's name (``STUDY-trial-N``, or the run directory's name).
        trial: The trial number; None for ``hpo train``.
        params: The sampled values (dotted keys), for an exported config those it came from.
        config: The whole training config as dotted keys.
        tags: Who ran it: ``host``, ``pid``, ``device`` (and ``study``, ``trial``).
    """

    kind: Literal["trial", "train"]
    name: str
    trial: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)

    def settings(self) -> dict[str, Any]:
        """``config`` with ``params`` over it: every setting once, by its dotted key."""
        return {**self.config, **self.params}


@dataclass(frozen=True)
class RunEnd:
    """How a run ended.

    Attributes:
        state: ``COMPLETE``, ``PRUNED``, ``FAIL`` or ``STOPPED`` (a signal stopped it).
        value: The trial's value (mean validation macro-F1); None when it has none.
        last_score: The last validation macro-F1 it reached (where a pruned trial stopped).
        detail: One line: where it was pruned, why it failed or stopped.
        pictures: PNG files (confusion matrix, learning curves) and the per-class F1 table.
    """

    state: State
    value: float | None = None
    last_score: float | None = None
    detail: str | None = None
    pictures: Sequence[Path] = ()

    @property
    def score(self) -> float | None:
        """The value, or for a run without one the last score it reached."""
        return self.value if self.value is not None else self.last_score

    @property
    def outcome(self) -> str:
        """``COMPLETE``, ``PRUNED at epoch 2 (fold 0)``, ``FAIL: <reason>``."""
        if not self.detail:
            return self.state
        sep = " " if self.state == "PRUNED" else ": "
        return f"{self.state}{sep}{self.detail}"


class Tracker(ABC):
    """An experiment tracker: one run at a time, told each epoch as it happens.

    Calls come in the order ``start``, ``epoch`` (any number), ``end``, once per run; a
    :class:`~hpo.trackers.TrackerSet` catches whatever they raise, so an implementation lets
    errors out (a dead server, a full disk) rather than logging them.
    """

    label: str = "tracker"
    """What log lines call it: ``mlflow (http://host:5000)``."""

    def prepare_study(self, study: optuna.Study) -> None:  # noqa: B027  (optional)
        """Once per study before its workers start (create what they share)."""

    @abstractmethod
    def start(self, run: RunInfo) -> None:
        """Open a run: its name, settings and tags."""

    @abstractmethod
    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        """One epoch (``EpochResult.to_dict()``) of ``part`` (``fold_0``, ``full``)."""

    @abstractmethod
    def end(self, outcome: RunEnd) -> None:
        """Record the outcome and pictures, and close the run."""

    def scrub(self, text: str) -> str:
        """``text`` (an error message) with this tracker's credentials hidden, for logs."""
        return text

    def abandon(self) -> None:  # noqa: B027  (optional)
        """Close a run this tracker failed in (one attempt; the run is not told more)."""
