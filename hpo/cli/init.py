"""``hpo init``: write a first study file for a folder of images, settings chosen from the data."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["init"]


@click.command(short_help="Write a study file for a folder of images.")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="The data: a folder of class folders (ROOT/<class>/*.jpg), or one holding train/ "
    "(class folders) and eval/; the competition layout is read too.",
)
@click.option(
    "--name",
    default=None,
    metavar="NAME",
    help="Study name: writes studies/NAME.yaml (default: the folder's name).",
)
@click.option(
    "--gpu",
    is_flag=True,
    help="Settings for a GPU: ImageNet-pretrained backbones at 224 px (default: a small CNN "
    "for a CPU).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing studies/NAME.yaml.")
def init(data: Path, name: str | None, gpu: bool, force: bool) -> None:
    """Read a folder of images (layout, classes, counts, image sizes) and write
    studies/NAME.yaml: image size, model, folds, loss and search space chosen from the data and
    the target (CPU, or GPU with --gpu), each explained by a comment. Nothing is written unless
    every check passes."""
    from hpo.scaffold import init_study

    made = init_study(data, name=name, gpu=gpu, force=force)
    summary = made.data
    counts = summary.class_counts
    height, width = made.image_size
    lines = [
        f"read {summary.root}: layout {summary.layout} ({summary.reason}), "
        f"{summary.n_images} images in {len(counts)} classes "
        f"(smallest {min(counts.values())}, largest {max(counts.values())}), "
        f"median image {summary.median_size[0]}x{summary.median_size[1]}",
        f"wrote {made.path}: {made.model}, image_size [{height}, {width}], "
        f"{made.n_splits}-fold, "
        + ("losses for imbalanced classes" if made.imbalanced else "classes about balanced"),
        "next:",
        *(f"  {command}" for command in made.next_commands),
    ]
    click.echo("\n".join(lines))
