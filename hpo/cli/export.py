"""``hpo export``: write a trial of a study as a training config YAML."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli._options import storage_option

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
@storage_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file (default: <study>-trial<N>.yaml in the current directory).",
)
def export(
    study_name: str, trial_number: int | None, storage: str | None, out: Path | None
) -> None:
    """Write the best (or the chosen) trial as a config for `hpo train --config`."""
    from hpo.export import default_export_path, export_trial
    from hpo.study import storage_for

    url = storage_for(study_name, cli=storage)
    exported = export_trial(study_name, url, trial_number=trial_number)
    path = out or default_export_path(exported.study_name, exported.trial_number)
    exported.config.save(path)
    click.echo(
        f"wrote {path}: study {exported.study_name!r}, trial {exported.trial_number}, "
        f"value {exported.value:.4f}"
    )
