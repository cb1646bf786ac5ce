"""What identifies a data file: its stat stamp and its content digest, remembered per stamp."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hpo.data._digests import content_digests, file_stamp


def test_the_stamp_changes_with_an_edit_and_not_with_a_read(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"one")
    stamp = file_stamp(path)
    path.read_bytes()
    assert file_stamp(path) == stamp
    before = os.stat(path)
    path.write_bytes(b"two")  # same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime kept: ctime is not
    assert file_stamp(path) != stamp
    assert file_stamp(tmp_path / "none") == "missing"


def test_digests_are_of_the_bytes_and_missing_files_say_so(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    digests = content_digests([a, b, tmp_path / "none"], None)
    assert digests[0] == digests[1] == hashlib.sha256(b"same").hexdigest()[:32]
    assert digests[2] == "missing"


def test_remembered_digests_follow_the_files(tmp_path: Path) -> None:
    path = tmp_path / "a"
    path.write_bytes(b"first")
    memo = tmp_path / "memo"
    (first,) = content_digests([path], memo)
    (memo_file,) = memo.glob("digests-*.json")
    assert content_digests([path], memo) == [first]
    path.write_bytes(b"second")
    assert content_digests([path], memo) != [first], "a changed stamp is read again"
    assert memo_file.stat().st_mode & 0o777 == 0o600, "private by default"
    path.write_bytes(b"third")
    content_digests([path], memo, group=True)
    assert memo_file.stat().st_mode & 0o777 == 0o660
