"""Housekeeping of the image cache: list its entries, verify them in full, delete old ones."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from hpo.data._cache_files import CorruptEntry, EntryFiles, read_sidecar, try_exclusive, verify

__all__ = ["CacheEntry", "list_cache", "prune_cache", "remove_entry", "verify_cache"]


@dataclass(frozen=True)
class CacheEntry:
    """One entry of the image cache, as ``hpo cache ls`` shows it.

    Attributes:
        key: The entry's name (``images-KEY.npy``).
        path: Its ``.npy`` file.
        size: Bytes on disk (pixels and sidecar).
        last_used: When it was last opened or built (seconds since the epoch).
        images: How many images it holds, or None if its sidecar is unreadable.
        image_size: ``(height, width)``, or None.
        crop: ``(top, left, height, width)`` or None.
        bad: How many of its images did not decode.
        in_use: A process has it mapped now.
        problem: Why it cannot be used (corrupt, older version), or None.
    """

    key: str
    path: Path
    size: int
    last_used: float
    images: int | None
    image_size: tuple[int, int] | None
    crop: tuple[int, int, int, int] | None
    bad: int
    in_use: bool
    problem: str | None


def _in_use(files: EntryFiles) -> bool:
    if not files.use.exists():
        return False
    try:
        held = try_exclusive(files.use)
    except (ImportError, OSError):
        return False
    if held is None:
        return True
    held.close()
    return False


def _describe(files: EntryFiles) -> CacheEntry:
    npy_stat = files.npy.stat()
    size, last_used = npy_stat.st_size, npy_stat.st_mtime
    images = image_size = crop = None
    bad, problem = 0, None
    try:
        meta_stat = files.meta.stat()
        size += meta_stat.st_size
        last_used = meta_stat.st_mtime
        record = read_sidecar(files)
        images, bad = int(record["count"]), len(record["bad"])
        image_size = (int(record["image_size"][0]), int(record["image_size"][1]))
        crop = None if record["crop"] is None else tuple(int(v) for v in record["crop"])
    except (CorruptEntry, OSError) as exc:
        problem = str(exc)
    return CacheEntry(
        key=files.key,
        path=files.npy,
        size=size,
        last_used=last_used,
        images=images,
        image_size=image_size,
        crop=crop,  # type: ignore[arg-type]
        bad=bad,
        in_use=_in_use(files),
        problem=problem,
    )


def _entry_files(directory: Path) -> list[EntryFiles]:
    if not directory.is_dir():
        return []
    keys = sorted(p.name[len("images-") : -len(".npy")] for p in directory.glob("images-*.npy"))
    return [EntryFiles(directory, key) for key in keys]


def list_cache(directory: Path) -> list[CacheEntry]:
    """The entries of the cache at ``directory``, least recently used first."""
    entries = []
    for files in _entry_files(Path(directory)):
        with contextlib.suppress(FileNotFoundError):  # evicted meanwhile
            entries.append(_describe(files))
    return sorted(entries, key=lambda e: e.last_used)


def verify_cache(directory: Path) -> list[CacheEntry]:
    """Check every entry in full against its checksums; returns the entries with a problem
    (their ``problem`` says what), which the next run using them rebuilds."""
    failed = []
    for entry in list_cache(directory):
        if entry.problem is None:
            files = EntryFiles(Path(directory), entry.key)
            try:
                verify(files, read_sidecar(files), full=True)
                continue
            except (CorruptEntry, OSError) as exc:
                entry = CacheEntry(**{**entry.__dict__, "problem": str(exc)})
        failed.append(entry)
    return failed


def remove_entry(files: EntryFiles) -> bool:
    """Delete an entry unless a process has it mapped; True if it was deleted."""
    try:
        held = try_exclusive(files.use)
    except ImportError:
        held = None
    if held is None:
        return False
    try:
        files.npy.unlink(missing_ok=True)
        files.meta.unlink(missing_ok=True)
        files.status.unlink(missing_ok=True)
        # Its lock files go too. Anyone who opens them from now on creates new ones; a process
        # already blocked on the old .use file at worst maps a rebuilt entry that a later prune
        # deletes under it (its pixels stay valid until it exits).
        building = try_exclusive(files.lock) if files.lock.exists() else None
        if building is not None:
            files.lock.unlink(missing_ok=True)
            building.close()
        files.use.unlink(missing_ok=True)
    finally:
        held.close()
    return True


def prune_cache(
    directory: Path,
    *,
    older_than: float | None = None,
    max_size: int | None = None,
    keep: frozenset[str] = frozenset(),
    dry_run: bool = False,
) -> list[CacheEntry]:
    """Delete entries unused for ``older_than`` seconds, then the least recently used ones
    until the cache holds at most ``max_size`` bytes. Entries in use (mapped by a process)
    and those in ``keep`` stay. Leftover temporary files of finished builds go too.

    Returns:
        The entries deleted (or that would be, with ``dry_run``).
    """
    directory = Path(directory)
    entries = list_cache(directory)
    now = time.time()
    chosen: list[CacheEntry] = []
    if older_than is not None:
        chosen += [e for e in entries if now - e.last_used > older_than]
    if max_size is not None:
        total = sum(e.size for e in entries if e not in chosen)
        for entry in entries:  # least recently used first
            if total <= max_size:
                break
            if entry not in chosen and entry.key not in keep and not entry.in_use:
                chosen.append(entry)
                total -= entry.size
    removed = []
    for entry in chosen:
        if entry.key in keep or entry.in_use:
            continue
        if dry_run or remove_entry(EntryFiles(directory, entry.key)):
            removed.append(entry)
    if not dry_run:
        _remove_leftovers(directory)
    return removed


def _remove_leftovers(directory: Path) -> None:
    """Temporary files of builds that no one runs (their build lock is free) are stale."""
    for tmp in directory.glob(".images-*.tmp"):
        key = tmp.name[len(".images-") :].split(".", 1)[0]
        files = EntryFiles(directory, key)
        with contextlib.suppress(ImportError, OSError):
            held = try_exclusive(files.lock)
            if held is not None:
                try:
                    tmp.unlink(missing_ok=True)
                finally:
                    held.close()
