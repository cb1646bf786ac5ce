"""A progress bar for the library's ``advance(done, total)`` callbacks (decoding images)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from hpo.cli._console import make_console

__all__ = ["progress_bar"]

_REFRESH_S = 0.1


@contextlib.contextmanager
def progress_bar(
    description: str, *, enabled: bool = True
) -> Iterator[Callable[[int, int], None]]:
    """An ``advance(done, total)`` callback that draws a transient bar on stderr.

    The bar appears at the first call (a warm cache that decodes nothing shows none) and is
    redrawn at most every 0.1 s. Off a terminal (a log, a pipe) or when not ``enabled`` the
    callback does nothing, so logs get no escape codes.

    Usage: ``with progress_bar("decoding images") as advance: load_training_data(cfg,
    advance=advance)``.
    """
    console = make_console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda done, total: None
        return
    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = None
    last = 0.0

    def advance(done: int, total: int) -> None:
        nonlocal task, last
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total)
        now = time.monotonic()
        if done >= total or now - last >= _REFRESH_S:
            bar.update(task, completed=done, total=total)
            last = now

    try:
        yield advance
    finally:
        if task is not None:
            bar.stop()
