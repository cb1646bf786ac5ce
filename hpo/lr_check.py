"""What a study's schedules do to the learning rate: the final-to-initial ratio each allows.

The ratio is the rate a run's last epoch trains at (mean over its steps) over the optimizer's
rate (:func:`hpo.train.optim.final_lr_ratio`).

A schedule searched without regard to the run's length can leave a dead region: ``step`` with
``step_size: 1`` and ``gamma: 0.1`` divides the rate by 10^15 over 16 epochs, so a trial drawn
there never learns after its first epochs. ``hpo run --dry-run`` reports, per scheduler the
space can pick, the range of the ratio over every corner of its searched parameters, and warns
below :data:`DEAD_RATIO`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hpo.config import apply_overrides, train_config_from_dict
from hpo.space import Space
from hpo.train.optim import final_lr_ratio

__all__ = ["DEAD_RATIO", "ScheduleRange", "schedule_ranges"]

DEAD_RATIO = 1e-4
"""A final learning rate below this fraction of the initial one learns next to nothing."""


@dataclass(frozen=True)
class ScheduleRange:
    """The final-to-initial learning-rate ratios one scheduler reaches over the space.

    Attributes:
        scheduler: The scheduler's name.
        low: The smallest ratio, at ``low_at``.
        high: The largest ratio.
        low_at: The scheduler settings (and epochs) of the smallest ratio, for the warning.
    """

    scheduler: str
    low: float
    high: float
    low_at: str

    @property
    def dead(self) -> bool:
        """Whether some corner of the space ends below :data:`DEAD_RATIO`."""
        return self.low < DEAD_RATIO


def schedule_ranges(
    space: Space, base: Mapping[str, Any], *, source: str, steps_per_epoch: int = 20
) -> list[ScheduleRange]:
    """Final-to-initial learning-rate ratios per scheduler over every corner of the space.

    Corners combine the bounds of every searched scheduler parameter (each branch of a searched
    scheduler choice) and of a searched ``train.epochs``.

    Args:
        space: The parsed search space.
        base: The study's fixed settings (``data`` and ``train`` sections).
        source: The study file, for messages.
        steps_per_epoch: Optimizer steps per epoch, for per-batch schedules.
    """
    epochs_corners = space.corners("train.epochs")
    found: dict[str, list[tuple[float, str]]] = {}
    for corner in space.corners("train.scheduler"):
        for epochs in epochs_corners:
            settings = {**corner, **epochs}
            config = train_config_from_dict(apply_overrides(base, list(settings.items())), source)
            spec = config.train.scheduler
            ratio = final_lr_ratio(
                spec, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch
            )
            where = ", ".join(f"{k}={v}" for k, v in sorted(spec.params.items()))
            if spec.warmup_epochs:
                where += f", warmup_epochs={spec.warmup_epochs}"
            found.setdefault(spec.name, []).append(
                (ratio, f"{where}{', ' if where else ''}epochs={config.train.epochs}")
            )
    ranges = []
    for name, points in found.items():
        low, low_at = min(points)
        ranges.append(ScheduleRange(name, low, max(r for r, _ in points), low_at))
    return ranges
