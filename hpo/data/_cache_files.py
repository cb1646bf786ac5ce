"""The image cache's files on disk: names, sidecars, checksums, locks and build status.

One entry of the cache is ``images-KEY.npy`` (the pixels) with its sidecar ``images-KEY.json``
(what it holds, the images that did not decode, a CRC-32 per chunk of the ``.npy``). Beside them
live ``images-KEY.lock`` (held by the one process that builds the entry), ``images-KEY.use``
(held shared by every process that maps it, so eviction never removes an entry in use) and,
while a build runs, ``images-KEY.status`` (its pid and progress, for the processes that wait).
The sidecar's modification time is the entry's last use. Temporary files start with a dot and
end in ``.tmp``; under an entry's build lock, its leftovers are stale and removed.

Settings (environment variables, read when the cache is used):

- ``HPO_CACHE_MAX_SIZE``: after a build, evict least recently used entries above this size.
- ``HPO_CACHE_WAIT``: give up waiting for another process's build after this long.
- ``HPO_CACHE_SHARED=group``: files 0660 and new folders 2770, for users sharing one cache.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import random
import re
import socket
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpo.exceptions import DataError

__all__ = [
    "CacheSettings",
    "CorruptEntry",
    "EntryFiles",
    "build_lock",
    "cache_settings",
    "parse_duration",
    "parse_size",
    "read_sidecar",
    "use_lease",
    "verify",
]

logger = logging.getLogger(__name__)

VERSION = 2  # bump when decoding or the files change, so old entries are not reused
CHUNK = 4 << 20  # bytes per checksum chunk
_SAMPLED = 4  # chunks checked at random (besides the first and the last) when a big entry opens
_WAIT_REPORT_S = 10.0  # a waiting process says what it waits for this often
_POLL_S = 0.2


class CorruptEntry(Exception):
    """An entry whose sidecar or pixels do not pass their checks; the message says why."""


@dataclass(frozen=True)
class CacheSettings:
    """The cache's environment settings, checked before anything is written."""

    max_size: int | None
    wait: float | None
    group: bool


def cache_settings() -> CacheSettings:
    """``HPO_CACHE_MAX_SIZE``, ``HPO_CACHE_WAIT`` and ``HPO_CACHE_SHARED``, parsed.

    Raises:
        DataError: a value that does not parse, naming the variable and what is accepted.
    """
    env = os.environ
    max_size = env.get("HPO_CACHE_MAX_SIZE", "").strip()
    wait = env.get("HPO_CACHE_WAIT", "").strip()
    shared = env.get("HPO_CACHE_SHARED", "").strip().lower()
    if shared not in ("", "private", "group"):
        raise DataError(f"HPO_CACHE_SHARED={shared!r}: expected 'group' or 'private'")
    try:
        size = parse_size(max_size) if max_size else None
    except ValueError as exc:
        raise DataError(f"HPO_CACHE_MAX_SIZE: {exc}") from None
    try:
        seconds = parse_duration(wait) if wait else None
    except ValueError as exc:
        raise DataError(f"HPO_CACHE_WAIT: {exc}") from None
    return CacheSettings(max_size=size, wait=seconds, group=shared == "group")


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``"20G"``, ``"500M"``, ``"1.5T"``, ``"1000000"`` -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r}: expected a size like 20G, 500M or 1000000 (bytes)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def parse_duration(text: str) -> float:
    """``"30"`` (seconds), ``"90s"``, ``"10m"``, ``"12h"``, ``"7d"``, ``"2w"`` -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r}: expected a duration like 30s, 10m, 12h or 7d")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


# ---------------------------------------------------------------------------------------------
# Names and permissions


@dataclass(frozen=True)
class EntryFiles:
    """The files of one entry."""

    directory: Path
    key: str

    def _name(self, suffix: str) -> Path:
        return self.directory / f"images-{self.key}.{suffix}"

    @property
    def npy(self) -> Path:
        return self._name("npy")

    @property
    def meta(self) -> Path:
        return self._name("json")

    @property
    def lock(self) -> Path:
        return self._name("lock")

    @property
    def use(self) -> Path:
        return self._name("use")

    @property
    def status(self) -> Path:
        return self._name("status")

    def temporary(self, suffix: str) -> Path:
        """A new, empty temporary file of this entry (removed as stale by the next builder)."""
        fd, name = tempfile.mkstemp(
            prefix=f".images-{self.key}.", suffix=f".{suffix}.tmp", dir=self.directory
        )
        os.close(fd)
        return Path(name)

    def leftovers(self) -> list[Path]:
        return sorted(self.directory.glob(f".images-{self.key}.*.tmp"))


def make_directory(directory: Path, group: bool) -> None:
    """Create the cache folder (2770 in group mode)."""
    if directory.is_dir():
        return
    directory.mkdir(parents=True, exist_ok=True)
    if group:
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o2770)


def set_mode(path: Path, group: bool) -> None:
    """0660 in group mode, else leave the file private (0600, as ``mkstemp`` makes it)."""
    if group:
        os.chmod(path, 0o660)


def write_json(files: EntryFiles, target: Path, record: dict[str, Any], group: bool) -> None:
    """Write ``record`` to ``target`` atomically."""
    tmp = files.temporary(target.suffix.lstrip("."))
    try:
        tmp.write_text(json.dumps(record))
        set_mode(tmp, group)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# Space, checksums, sidecars


def reserve(fd: int, nbytes: int) -> None:
    """Allocate ``nbytes`` of disk for ``fd`` now, so a full disk is an ``OSError`` here and
    never a ``SIGBUS`` while the memory map is written."""
    if hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, nbytes)
        return
    zeros = bytes(1 << 20)  # no fallocate (not Linux): write zeros after what is there
    position = os.lseek(fd, 0, os.SEEK_END)
    while position < nbytes:
        position += os.write(fd, zeros[: min(len(zeros), nbytes - position)])


def checksums(path: Path, chunk: int = CHUNK) -> list[int]:
    """CRC-32 of each ``chunk`` bytes of ``path``."""
    sums = []
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            sums.append(zlib.crc32(block))
    return sums


def _check_chunks(path: Path, chunk: int, sums: list[int], which: list[int]) -> None:
    with open(path, "rb") as handle:
        for i in which:
            handle.seek(i * chunk)
            if zlib.crc32(handle.read(chunk)) != sums[i]:
                raise CorruptEntry(f"chunk {i + 1} of {len(sums)} fails its checksum")


def read_sidecar(files: EntryFiles) -> dict[str, Any]:
    """The sidecar of an entry, every key checked.

    Raises:
        CorruptEntry: missing, unreadable, another version, or a key missing or mistyped.
        OSError: the file cannot be read (other than missing).
    """
    try:
        record = json.loads(files.meta.read_text())
    except FileNotFoundError:
        raise CorruptEntry("its sidecar .json is missing") from None
    except ValueError as exc:
        raise CorruptEntry(f"its sidecar is not JSON ({exc})") from None
    if not isinstance(record, dict):
        raise CorruptEntry("its sidecar is not a JSON object")
    if record.get("version") != VERSION:
        raise CorruptEntry(
            f"made by another version of hpo (cache version {record.get('version')!r}; this one "
            f"reads {VERSION})"
        )

    def ints(value: object, n: int | None = None) -> bool:
        return (
            isinstance(value, list)
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
            and (n is None or len(value) == n)
        )

    checks = {
        "count": lambda v: isinstance(v, int) and v >= 0,
        "image_size": lambda v: ints(v, 2),
        "crop": lambda v: v is None or ints(v, 4),
        "bad": lambda v: (
            isinstance(v, list)
            and all(
                isinstance(b, list)
                and len(b) == 3
                and isinstance(b[0], int)
                and isinstance(b[1], str)
                and isinstance(b[2], str)
                for b in v
            )
        ),
        "chunk": lambda v: isinstance(v, int) and v > 0,
        "crc32": ints,
        "created": lambda v: isinstance(v, (int, float)),
    }
    for name, ok in checks.items():
        if name not in record:
            raise CorruptEntry(f"its sidecar lacks the key {name!r}")
        if not ok(record[name]):
            raise CorruptEntry(f"its sidecar's {name!r} is malformed: {record[name]!r}")
    return record


def verify(files: EntryFiles, record: dict[str, Any], *, full: bool) -> None:
    """Check the ``.npy`` against the sidecar's checksums: every chunk when ``full``, else the
    first, the last and a few at random (every chunk of a small entry).

    Raises:
        CorruptEntry: the size or a checksum does not match.
    """
    chunk, sums = int(record["chunk"]), [int(s) for s in record["crc32"]]
    size = files.npy.stat().st_size
    if len(sums) != -(-size // chunk):
        raise CorruptEntry(f"its size ({size} bytes) differs from the one recorded")
    n = len(sums)
    if full or n <= 2 + 2 * _SAMPLED:
        which = list(range(n))
    else:
        which = sorted({0, n - 1, *random.sample(range(1, n - 1), _SAMPLED)})
    _check_chunks(files.npy, chunk, sums, which)


def touch(files: EntryFiles) -> None:
    """Record a use of the entry (the sidecar's mtime); a read-only cache stays as it is."""
    with contextlib.suppress(OSError):
        os.utime(files.meta)


# ---------------------------------------------------------------------------------------------
# Locks: the build lock (exclusive, waited for with news), the use lock (shared while mapped)


class _Flock:
    """An open lock file; ``flock`` held until closed or garbage collected."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None

    def __del__(self) -> None:
        self.close()


def _open_lock(path: Path, group: bool) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o660 if group else 0o644)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EROFS, errno.EPERM):
            raise
        fd = os.open(path, os.O_RDONLY)  # a read-only cache: flock works on any fd
    if group:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o660)
    return fd


def use_lease(files: EntryFiles, group: bool) -> _Flock | None:
    """A shared lock on the entry's ``.use`` file, held while the entry is mapped (keep the
    returned object as long as the map). None where it cannot be taken (read-only cache)."""
    try:
        import fcntl

        fd = _open_lock(files.use, group)
    except (ImportError, OSError):
        return None
    fcntl.flock(fd, fcntl.LOCK_SH)
    return _Flock(fd)


def try_exclusive(path: Path) -> _Flock | None:
    """The exclusive lock of ``path`` if no one holds it now, else None."""
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return _Flock(fd)


def write_status(files: EntryFiles, done: int, total: int, started: float, group: bool) -> None:
    """Tell waiting processes who builds and how far (best effort)."""
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "done": done,
        "total": total,
        "started": started,
        "updated": time.time(),
    }
    with contextlib.suppress(OSError):
        write_json(files, files.status, record, group)


def _builder(files: EntryFiles) -> str:
    """``pid 123 on host, 40 of 1000 images decoded, last news 3 s ago`` from the status file."""
    try:
        record = json.loads(files.status.read_text())
        pid, host = int(record["pid"]), str(record["host"])
        done, total, updated = int(record["done"]), int(record["total"]), record["updated"]
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (no status yet)"
    ago = max(0.0, time.time() - float(updated))
    return f"pid {pid} on {host}, {done} of {total} images decoded, last news {ago:.0f} s ago"


@contextlib.contextmanager
def build_lock(
    files: EntryFiles,
    *,
    group: bool,
    wait: float | None,
    advance: Callable[[int, int], None] | None = None,
) -> Iterator[None]:
    """Hold the entry's build lock; while another process holds it, say who and how far.

    Raises:
        DataError: ``wait`` seconds passed and the other process still builds.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: builders may race; atomic renames keep readers safe
        yield
        return
    fd = _open_lock(files.lock, group)
    try:
        start = time.monotonic()
        next_report = start + 1.0
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            now = time.monotonic()
            if now >= next_report:
                logger.info(
                    "waiting for the image cache %s: built by %s", files.npy.name, _builder(files)
                )
                next_report = now + _WAIT_REPORT_S
            if advance is not None:
                _mirror(files, advance)
            if wait is not None and now - start >= wait:
                raise DataError(
                    f"{files.npy}: still being built by {_builder(files)} after waiting "
                    f"{now - start:.0f} s (HPO_CACHE_WAIT); is that process stopped? Resume or "
                    f"end it, or raise HPO_CACHE_WAIT"
                )
            time.sleep(_POLL_S)
        try:
            for stale in files.leftovers():  # a builder killed before its rename left these
                logger.info("removing %s, left by an interrupted build", stale.name)
                stale.unlink(missing_ok=True)
            yield
        finally:
            files.status.unlink(missing_ok=True)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _mirror(files: EntryFiles, advance: Callable[[int, int], None]) -> None:
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        record = json.loads(files.status.read_text())
        advance(int(record["done"]), int(record["total"]))
