"""Transient progress bars for the engine's passes over batches (epochs, predictions)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeElapsedColumn

__all__ = ["StepBars"]


class StepBars:
    """Draws ``progress(what, done, total)`` calls (``hpo.train.loop.StepProgress``) as one
    transient bar per pass, on a terminal only.

    The display is live only while a pass runs, so lines printed between passes (per-epoch
    results) and other progress displays (image decoding) never meet it.
    """

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._what = ""

    @property
    def callback(self) -> StepBars | None:
        """This object where a terminal shows bars; None elsewhere (logs get lines only)."""
        return self if self._console.is_terminal else None

    def __call__(self, what: str, done: int, total: int) -> None:
        if self._bar is None or what != self._what:
            self.close()
            self._bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(what, total=total)
            self._what = what
        assert self._task is not None
        self._bar.update(self._task, completed=done, total=total)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Remove the bar of an unfinished pass (an error or a stop cut it short)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None
