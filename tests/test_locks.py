"""The machine-wide file lock: one holder at a time, released when the block ends."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

import pytest

from hpo.locks import file_lock


def _can_lock(path: Path) -> bool:
    """Whether another open of ``path`` gets the lock now (flock is per open file)."""
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def test_the_lock_is_held_for_the_block_and_released_after(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    with file_lock(path):
        assert path.exists(), "created if missing"
        assert not _can_lock(path)
    assert _can_lock(path)


def test_released_when_the_block_raises(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    with pytest.raises(RuntimeError), file_lock(path):
        raise RuntimeError("the build failed")
    assert _can_lock(path)


def test_a_second_holder_waits_for_the_first(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    order: list[str] = []
    entered = threading.Event()
    with file_lock(path):
        waiter = threading.Thread(target=lambda: _hold(path, order, entered))
        waiter.start()
        assert not entered.wait(0.2), "the second holder got in while the first held the lock"
        order.append("first done")
    waiter.join(timeout=30)
    assert order == ["first done", "second"]


def _hold(path: Path, order: list[str], entered: threading.Event) -> None:
    with file_lock(path):
        entered.set()
        order.append("second")
