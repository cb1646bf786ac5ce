"""``hpo export``: write a trial of a study as a training config YAML."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli._options import storage_option
from hpo.exceptions import ConfigError

__all__ = ["export"]


@click.command(short_help="Write a trial as a training config YAML.")
@click.option("--study", "study_name", required=True, metavar="NAME", help="Study name.")
@click.option(
    "--trial",
    "trial_number",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Export trial N instead of the best complete trial.",
)
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=None,
    metavar="K",
    help="Export the K best trials with distinct parameters into the folder --out.",
)
@storage_option
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Output file (default: <study>-trial<N>.yaml in the current directory); with --top "
    "a folder (default: the current directory).",
)
def export(
    study_name: str,
    trial_number: int | None,
    top: int | None,
    storage: str | None,
    out: Path | None,
) -> None:
    """Write the best (or the chosen) trial as a config for `hpo train --config`."""
    from hpo.export import default_export_path, export_top, export_trial, write_top
    from hpo.study import storage_for, trackers_for

    url = storage_for(study_name, cli=storage)
    trackers = trackers_for(study_name)  # the study file's, so `hpo train` logs there too
    if top is not None:
        if trial_number is not None:
            raise ConfigError("--top and --trial exclude each other")
        if out is not None and out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out}: with --top, a folder (it is a file)")
        exports = export_top(study_name, url, top, trackers=trackers)
        for exported, path in zip(exports, write_top(exports, out or Path(".")), strict=True):
            click.echo(
                f"wrote {path}: study {exported.study_name!r}, trial {exported.trial_number}, "
                f"value {exported.value:.4f}"
            )
        if len(exports) < top:
            click.echo(f"the study has {len(exports)} distinct complete trial(s), not {top}")
        return
    exported = export_trial(study_name, url, trial_number=trial_number, trackers=trackers)
    path = out or default_export_path(exported.study_name, exported.trial_number)
    exported.config.save(path)
    click.echo(
        f"wrote {path}: study {exported.study_name!r}, trial {exported.trial_number}, "
        f"value {exported.value:.4f}"
    )
