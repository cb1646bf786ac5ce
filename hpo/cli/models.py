"""``hpo models``: the models a study can use; ``hpo models download`` fetches ImageNet weights."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["models"]


@click.group(invoke_without_command=True, short_help="List models; download ImageNet weights.")
@click.pass_context
def models(ctx: click.Context) -> None:
    """List the models (parameters, ImageNet weights cached in torch's cache or not)."""
    if ctx.invoked_subcommand is not None:
        return
    from hpo.cli._console import make_console, print_table
    from hpo.train.models import list_models

    print_table(
        make_console(),
        [
            [
                row.name,
                f"{row.params / 1e6:.1f}M",
                row.weights or "-",
                ("yes" if row.cached else "no") if row.weights else "-",
                str(row.min_size),
            ]
            for row in list_models()
        ],
        columns=("name", "parameters", "ImageNet", "cached", "min side"),
        title="models (train.model.name); weights: imagenet loads the ImageNet column",
        right=("parameters", "cached", "min side"),
    )


@models.command(short_help="Fetch ImageNet weights into torch's cache.")
@click.argument("names", nargs=-1, required=True)
@click.option(
    "--dir",
    "torch_home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Torch home to fill (files go to DIR/hub/checkpoints; workers set TORCH_HOME=DIR). "
    "Default: $TORCH_HOME or ~/.cache/torch.",
)
def download(names: tuple[str, ...], torch_home: Path | None) -> None:
    """Fetch the ImageNet weights of NAME... (or NAME:WEIGHT_NAME) ahead of the workers."""
    from hpo.train.weights import download as fetch_all

    for path in fetch_all(list(names), torch_home=torch_home, progress=True):
        click.echo(str(path))
