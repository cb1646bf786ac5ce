"""What identifies a data file: its stat stamp (for the image cache) and its content digest
(for the data fingerprint), the digests remembered per stamp so each file is read once."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["content_digests", "file_stamp"]

_MEMO_VERSION = 2


def file_stamp(path: Path) -> str:
    """Size, mtime, inode and ctime of ``path`` (``"missing"`` if it cannot be read).

    Tools that keep a file's mtime through an edit in place (``cp -p``, ``rsync -a``,
    ``exiftool -P``) cannot set its ctime, so an edited file always gets a new stamp.
    """
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return f"{st.st_size} {st.st_mtime_ns} {st.st_ino} {st.st_ctime_ns}"


def _digest(path: Path) -> str:
    try:
        with open(path, "rb") as handle:
            # SHA-256: hardware-accelerated on most CPUs, faster here than BLAKE2.
            return hashlib.file_digest(handle, "sha256").hexdigest()[:32]
    except OSError:
        return "missing"


def content_digests(
    paths: Sequence[Path], memo_dir: Path | None, *, group: bool = False
) -> list[str]:
    """A digest of each file's bytes (``"missing"`` for a file that cannot be read).

    Digests are remembered under ``memo_dir`` with each file's stamp, so a later call reads
    only the files that changed since. Without ``memo_dir`` (or where it cannot be written)
    every file is read. ``group``: the memo file is 0660 (``HPO_CACHE_SHARED=group``).
    """
    paths = [Path(os.path.abspath(p)) for p in paths]
    stamps = [file_stamp(p) for p in paths]
    memo_file = None
    memo: dict[str, list[str]] = {}
    if memo_dir is not None:
        name = hashlib.sha256("\0".join(map(str, paths)).encode()).hexdigest()[:24]
        memo_file = Path(memo_dir) / f"digests-{name}.json"
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            record = json.loads(memo_file.read_text())
            if record.get("version") == _MEMO_VERSION and isinstance(record.get("files"), dict):
                memo = record["files"]
    digests: list[str | None] = []
    todo = []
    for i, (path, stamp) in enumerate(zip(paths, stamps, strict=True)):
        known = memo.get(str(path))
        fresh = isinstance(known, list) and len(known) == 2 and known[0] == stamp
        if stamp != "missing" and fresh:
            digests.append(str(known[1]))  # type: ignore[index]
        else:
            digests.append(None)
            todo.append(i)
    if todo:
        with ThreadPoolExecutor(min(8, (os.cpu_count() or 1) + 2)) as pool:
            for i, digest in zip(todo, pool.map(lambda i: _digest(paths[i]), todo), strict=True):
                digests[i] = digest
        if memo_file is not None:
            files = {
                str(p): [s, d]
                for p, s, d in zip(paths, stamps, digests, strict=True)
                if s != "missing" and d != "missing"
            }
            with contextlib.suppress(OSError):
                memo_file.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=".digests-", suffix=".tmp", dir=memo_file.parent)
                try:
                    with os.fdopen(fd, "w") as handle:
                        json.dump({"version": _MEMO_VERSION, "files": files}, handle)
                    if group:
                        os.chmod(tmp, 0o660)
                    os.replace(tmp, memo_file)
                finally:
                    Path(tmp).unlink(missing_ok=True)
    return [d if d is not None else "missing" for d in digests]
