"""Atomic writes of the files users keep: whole or nothing, failures as one HPOError line."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from hpo.exceptions import HPOError
from hpo.files import atomic_path, make_dir, write_bytes_atomic, write_text_atomic
from hpo.testing.disks import mounted_tmpfs


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (root only): writes past its size fail with ENOSPC."""
    with mounted_tmpfs(tmp_path / "small", "64k") as mount:
        yield mount


def test_the_file_is_replaced_whole_and_nothing_else_is_left(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "report.html"  # folders are created
    assert write_text_atomic(path, "first") == path
    write_text_atomic(path, "sécond")
    assert path.read_text(encoding="utf-8") == "sécond"
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(path.parent) == ["report.html"]
    # The permissions of any new file (the umask's), not a private temporary file's 0600.
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_path_for_writers_that_need_one(tmp_path: Path) -> None:
    path = tmp_path / "oof.npz"
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        assert tmp.parent == tmp_path and tmp != path
        np.savez(f, a=np.arange(3))
    np.testing.assert_array_equal(np.load(path)["a"], np.arange(3))
    assert os.listdir(tmp_path) == ["oof.npz"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(ValueError, match="boom"), atomic_path(path) as tmp:
        tmp.write_text("half")
        raise ValueError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_a_file_where_a_folder_should_be_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for call in (
        lambda: write_text_atomic(tmp_path / "file" / "report.html", "x"),
        lambda: make_dir(tmp_path / "file" / "run"),
    ):
        with pytest.raises(HPOError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"cannot write {tmp_path / 'file'}/")
        assert "Not a directory" in message or "File exists" in message, message
        assert "\n" not in message
    assert os.listdir(tmp_path) == ["file"]


def test_a_folder_that_cannot_take_files_is_one_line() -> None:
    with pytest.raises(HPOError, match=r"^cannot write /proc/hpo-report\.html: "):
        write_text_atomic(Path("/proc/hpo-report.html"), "x")
    assert not Path("/proc/hpo-report.html").exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(full_disk: Path) -> None:
    path = full_disk / "report.html"
    with pytest.raises(HPOError) as info:
        write_bytes_atomic(path, b"x" * 1024 * 1024)
    assert str(info.value) == f"cannot write {path}: No space left on device (nothing was written)"
    assert os.listdir(full_disk) == []
    # An old file stays whole.
    write_text_atomic(path, "old")
    with pytest.raises(HPOError, match="No space left on device"):
        write_text_atomic(path, "y" * 1024 * 1024)
    assert path.read_text() == "old" and os.listdir(full_disk) == ["report.html"]
