"""A file lock shared by the processes of one machine (the image cache, the weights cache)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

__all__ = ["file_lock"]


@contextlib.contextmanager
def file_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created if missing) for the block.

    Workers starting together on one machine use it so one of them builds (decodes, downloads)
    and the others wait, then find the result. Where ``fcntl`` does not exist (not POSIX) the
    block runs unlocked: builders may race, and their atomic renames keep readers safe.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
