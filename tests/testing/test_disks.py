"""mounted_tmpfs: a small real disk that fills up, gone when the block ends."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from hpo.testing.disks import mounted_tmpfs


def test_a_small_disk_fills_up_and_is_unmounted_after(tmp_path: Path) -> None:
    with mounted_tmpfs(tmp_path / "small", "64k") as mount:
        assert mount == tmp_path / "small" and os.path.ismount(mount)
        with pytest.raises(OSError) as full, (mount / "big").open("wb") as f:
            f.write(b"x" * (256 << 10))
            f.flush()
        assert full.value.errno == errno.ENOSPC
    assert not os.path.ismount(tmp_path / "small")
