"""``hpo cache ls | prune | check``: the decoded-image cache, listed, trimmed and verified."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from hpo.data import CacheEntry

__all__ = ["cache"]


class _Parsed(click.ParamType):
    """A size (``20G``) or a duration (``7d``), parsed by the library's own parser."""

    def __init__(self, name: str, parse: str) -> None:
        self.name, self._parse = name, parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from hpo.data import _cache_files

        try:
            return getattr(_cache_files, self._parse)(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _dir_option(func: Any) -> Any:
    return click.option(
        "--cache-dir",
        type=click.Path(path_type=Path, file_okay=False),
        default=None,
        help="The cache folder  [default: $HPO_CACHE_DIR or ~/.cache/hpo]",
    )(func)


def _directory(cache_dir: Path | None) -> Path:
    from hpo.data import default_cache_dir

    return cache_dir if cache_dir is not None else default_cache_dir()


@click.group(short_help="List, prune and verify the decoded-image cache.")
def cache() -> None:
    """The decoded-image cache shared by trials and workers ($HPO_CACHE_DIR)."""


@cache.command("ls", short_help="List cache entries, least recently used first.")
@_dir_option
def ls(cache_dir: Path | None) -> None:
    """Entries of the image cache: size, images, image size, last use, in use or damaged."""
    from hpo.data import list_cache

    directory = _directory(cache_dir)
    entries = list_cache(directory)
    if not entries:
        click.echo(f"{directory}: no cache entries")
        return
    from hpo.cli._console import make_console, print_table

    console = make_console()
    print_table(
        console,
        [
            [
                entry.key,
                _size(entry.size),
                _images(entry),
                "-" if entry.image_size is None else "x".join(map(str, entry.image_size)),
                "-" if entry.crop is None else ",".join(map(str, entry.crop)),
                _ago(entry.last_used),
                _state(entry),
            ]
            for entry in entries
        ],
        columns=("entry", "size", "images", "image size", "crop", "last used", "state"),
        title=str(directory),
        right=("size", "images"),
    )
    console.print(f"{len(entries)} entries, {_size(sum(e.size for e in entries))}")


@cache.command(short_help="Delete old entries, or the least recently used above a size.")
@_dir_option
@click.option(
    "--older-than",
    type=_Parsed("duration", "parse_duration"),
    default=None,
    metavar="DURATION",
    help="Delete entries unused for longer (30m, 12h, 7d, 2w).",
)
@click.option(
    "--max-size",
    type=_Parsed("size", "parse_size"),
    default=None,
    metavar="SIZE",
    help="Then delete the least recently used until the cache holds at most this (500M, 20G).",
)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
def prune(
    cache_dir: Path | None, older_than: float | None, max_size: int | None, dry_run: bool
) -> None:
    """Delete cache entries; entries a running process has mapped are always kept."""
    from hpo.data import list_cache, prune_cache

    if older_than is None and max_size is None:
        raise click.UsageError("give --older-than, --max-size or both")
    directory = _directory(cache_dir)
    removed = prune_cache(directory, older_than=older_than, max_size=max_size, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for entry in removed:
        click.echo(f"{verb} {entry.path.name} ({_size(entry.size)}, used {_ago(entry.last_used)})")
    left = sum(e.size for e in list_cache(directory))
    click.echo(
        f"{verb} {len(removed)} entries ({_size(sum(e.size for e in removed))}); "
        f"{_size(left)} left in {directory}"
    )


@cache.command(short_help="Verify every entry against its checksums.")
@_dir_option
def check(cache_dir: Path | None) -> None:
    """Read every entry in full and compare it with its checksums (exit 2 if one fails; the
    next run that uses a failed entry rebuilds it)."""
    from hpo.data import list_cache, verify_cache

    directory = _directory(cache_dir)
    failed = verify_cache(directory)
    for entry in failed:
        click.echo(f"{entry.path}: {entry.problem}", err=True)
    total = len(list_cache(directory))
    click.echo(f"{total - len(failed)} of {total} entries intact in {directory}")
    if failed:
        sys.exit(2)


def _images(entry: CacheEntry) -> str:
    if entry.images is None:
        return "-"
    return f"{entry.images} ({entry.bad} bad)" if entry.bad else str(entry.images)


def _state(entry: CacheEntry) -> str:
    if entry.problem is not None:
        return f"unusable: {entry.problem}"
    return "in use" if entry.in_use else ""


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _ago(when: float) -> str:
    seconds = max(0.0, time.time() - when)
    for unit, scale in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= scale:
            return f"{seconds / scale:.0f} {unit} ago"
    return f"{seconds:.0f} s ago"
