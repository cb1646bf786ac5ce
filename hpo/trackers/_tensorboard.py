"""TensorBoard event files: per-epoch curves of each fold plus hparams, one run per trial.

Scalars are ``train_loss/fold_K``, ``val_loss/fold_K``, ``val_macro_f1/fold_K``,
``val_accuracy/fold_K`` and ``lr/fold_K`` at step = epoch (1-based), written as each epoch
ends, and the run's sampled values with its final value (``hparams/macro_f1``) go into
TensorBoard's HParams view, which compares trials. TensorBoard is an optional dependency
(``pip install -e ".[tensorboard]"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.components import TRACKERS
from hpo.exceptions import ConfigError
from hpo.trackers._base import (
    RunEnd,
    RunInfo,
    Tracker,
    TrackerContext,
    epoch_metrics,
    flat_settings,
)

__all__ = [
    "METRIC_TAG",
    "EventWriter",
    "TensorBoardTracker",
    "flat_hparams",
    "require_tensorboard",
    "write_trial_events",
]

METRIC_TAG = "hparams/macro_f1"
HParam = int | float | str | bool
_INSTALL = 'pip install tensorboard (or pip install -e ".[tensorboard]")'


def require_tensorboard(flag: str = "--tensorboard") -> None:
    """Raise ConfigError naming the pip command when TensorBoard is not installed."""
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        raise ConfigError(f"{flag} needs the tensorboard package: {_INSTALL}") from None


def _hparam_value(value: Any) -> HParam:
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def flat_hparams(values: Mapping[str, Any], prefix: str = "") -> dict[str, HParam]:
    """Nested settings as dotted keys with values TensorBoard accepts (others as text)."""
    return {key: _hparam_value(value) for key, value in flat_settings(values, prefix).items()}


class EventWriter:
    """One TensorBoard run (a folder of event files).

    Args:
        logdir: The run's folder.
    """

    def __init__(self, logdir: Path) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter

        self.logdir = Path(logdir)
        self._writer = SummaryWriter(log_dir=str(self.logdir))

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        """Log one epoch (``EpochResult.to_dict()``) of ``part`` (``fold_0``, ``full``)."""
        step = int(result["epoch"])
        for tag, value in epoch_metrics(part, result).items():
            self._writer.add_scalar(tag, value, step)
        self._writer.flush()  # live: TensorBoard shows the epoch now

    def hparams(self, values: Mapping[str, Any], value: float | None) -> None:
        """The run's settings and its final value, for the HParams view."""
        from torch.utils.tensorboard.summary import hparams

        hp = {k: _hparam_value(v) for k, v in values.items()}
        metric = {METRIC_TAG: float("nan") if value is None else float(value)}
        exp, ssi, sei = hparams(hp, metric)
        file_writer = self._writer._get_file_writer()
        for summary in (exp, ssi, sei):
            file_writer.add_summary(summary)
        self._writer.add_scalar(METRIC_TAG, metric[METRIC_TAG])

    def close(self) -> None:
        self._writer.close()


def write_trial_events(
    logdir: Path,
    *,
    number: int,
    params: Mapping[str, Any],
    value: float | None,
    state: str,
    history: Sequence[Sequence[Mapping[str, Any]]],
) -> Path:
    """Write a finished trial's curves and hparams into ``logdir/trial_NNNN``.

    Args:
        logdir: The study's TensorBoard folder.
        number: Trial number.
        params: Sampled values.
        value: The trial's final value (None for a pruned trial that never finished a fold).
        state: ``complete`` or ``pruned`` (an hparam, so the HParams view can filter on it).
        history: Per fold, each epoch's ``EpochResult.to_dict()``.

    Returns:
        The run's folder.
    """
    run_dir = Path(logdir) / f"trial_{number:04d}"
    writer = EventWriter(run_dir)
    try:
        for fold, epochs in enumerate(history):
            for result in epochs:
                writer.epoch(f"fold_{fold}", result)
        writer.hparams({**params, "trial": number, "state": state}, value)
    finally:
        writer.close()
    return run_dir


class TensorBoardTracker(Tracker):
    """A TensorBoard run per trial (``DIR/trial_NNNN``) or per ``hpo train`` (``DIR/<run>``).

    Args:
        dir: The folder of the runs.
    """

    def __init__(self, *, dir: Path) -> None:
        self.dir = Path(dir)
        self.label = f"tensorboard ({self.dir})"
        self._writer: EventWriter | None = None
        self._params: dict[str, Any] = {}
        self._trial: int | None = None

    def start(self, run: RunInfo) -> None:
        folder = f"trial_{run.trial:04d}" if run.trial is not None else run.name
        self._writer = EventWriter(self.dir / folder)
        self._params, self._trial = dict(run.params), run.trial
        if not self._params and run.kind == "train":  # a config not exported: its settings
            train = {k: v for k, v in run.config.items() if k.startswith("train.")}
            self._params = {k.removeprefix("train."): v for k, v in train.items()}

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        assert self._writer is not None
        self._writer.epoch(part, result)

    def end(self, outcome: RunEnd) -> None:
        writer, self._writer = self._writer, None
        assert writer is not None
        try:
            values = dict(self._params)
            if self._trial is not None:
                # A pruned trial is compared at the last score it reached.
                values |= {"trial": self._trial, "state": outcome.state.lower()}
            writer.hparams(values, outcome.score)
        finally:
            writer.close()

    def abandon(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()


@TRACKERS.register("tensorboard")
def _tensorboard(*, context: TrackerContext, dir: str) -> Tracker:
    return TensorBoardTracker(dir=Path(dir))
