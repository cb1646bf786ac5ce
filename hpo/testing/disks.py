"""A small real disk for tests of what happens when one fills up: a tmpfs mounted for a test."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

__all__ = ["mounted_tmpfs"]


@contextlib.contextmanager
def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``: ``"64k"``, ``"300k"``) at ``mount``, which is
    created; unmounted when the block ends.

    Mounting needs root and the ``mount`` command: where it fails the calling test is skipped.
    Writes past the size fail with ``ENOSPC``, as on a full disk.
    """
    import pytest

    mount.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
