"""Files users keep, written atomically: a temporary file beside the target, synced, renamed.

A reader (or a later run) sees the old file or the whole new one, never a half-written one, and
a write that fails (read-only folder, full disk, a file where a folder should be) leaves nothing
behind and becomes one :class:`~hpo.exceptions.HPOError` line naming the file and the reason.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hpo.exceptions import HPOError

__all__ = ["atomic_path", "make_dir", "write_bytes_atomic", "write_text_atomic"]


@contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block ends.

    The folder is created if needed. On leaving the block the temporary file is synced to disk
    and renamed into place; if the block raises, it is removed and ``path`` is left as it was.
    For writers that need a path (``np.savez``, ``csv`` through ``open``); text and bytes have
    :func:`write_text_atomic` and :func:`write_bytes_atomic`.

    Raises:
        HPOError: The folder cannot be created or written to, or the disk is full (an
            ``OSError`` from the block too): ``cannot write PATH: REASON``.
    """
    path = Path(path)
    # A name of our own (not mkstemp's, whose files are private to the owner): the file gets
    # the permissions of any file the user creates.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    make_dir(path.parent, for_file=path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise _error(path, exc) from None
    try:
        yield tmp
        _sync(tmp)
        os.replace(tmp, path)
        with contextlib.suppress(OSError):  # the rename itself: not every file system can
            _sync(path.parent)
    except OSError as exc:
        raise _error(path, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_bytes_atomic(path: Path | str, data: bytes | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically (:func:`atomic_path`); returns ``path``.

    Raises:
        HPOError: ``path`` cannot be written (``cannot write PATH: REASON``).
    """
    with atomic_path(path) as tmp, tmp.open("wb") as f:
        f.write(data)
    return Path(path)


def write_text_atomic(path: Path | str, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`); returns ``path``.

    Raises:
        HPOError: ``path`` cannot be written (``cannot write PATH: REASON``).
    """
    return write_bytes_atomic(path, text.encode(encoding))


def make_dir(path: Path | str, *, for_file: Path | None = None) -> Path:
    """Create folder ``path`` (and its parents) if needed; returns it.

    Raises:
        HPOError: It cannot be created (``cannot write PATH: REASON``, ``PATH`` being
            ``for_file`` when given: the file the folder is made for).
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's word for "a file is where the folder should be"
        raise HPOError(
            f"cannot write {for_file or path}: Not a directory ({path} is a file)"
        ) from None
    except OSError as exc:
        raise _error(for_file or path, exc) from None
    return path


def _sync(path: Path) -> None:
    """Flush ``path`` (a file or a folder) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _error(path: Path, exc: OSError) -> HPOError:
    reason = exc.strerror or str(exc)
    return HPOError(f"cannot write {path}: {reason} (nothing was written)")
