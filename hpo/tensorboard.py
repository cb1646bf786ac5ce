"""TensorBoard event files: per-epoch curves of each fold plus hparams, one run per trial.

Scalars are ``train_loss/fold_K``, ``val_macro_f1/fold_K`` and ``lr/fold_K`` at step = epoch
(1-based), and the run's sampled values with its final value (``hparams/macro_f1``) go into
TensorBoard's HParams view, which compares trials. TensorBoard is an optional dependency
(``pip install -e ".[tensorboard]"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hpo.exceptions import ConfigError

__all__ = [
    "METRIC_TAG",
    "EventWriter",
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
    out: dict[str, HParam] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flat_hparams(value, f"{name}."))
        elif value is not None:
            out[name] = _hparam_value(value)
    return out


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
        for key, tag in (("train_loss", "train_loss"), ("macro_f1", "val_macro_f1"), ("lr", "lr")):
            value = result.get(key)
            if value is not None:
                self._writer.add_scalar(f"{tag}/{part}", float(value), step)

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
