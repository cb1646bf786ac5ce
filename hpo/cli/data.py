"""``hpo data synth`` and ``hpo data check``: argument parsing and printing only."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, get_args

import click

from hpo.config import DataFormat

if TYPE_CHECKING:
    from hpo.data import CheckReport

__all__ = ["data"]


@click.group(short_help="Make a demo data set; check a data set.")
def data() -> None:
    """Create demo data sets and validate data sets."""


@data.command(short_help="Write a demo data set (competition layout).")
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Data root to create (gets train/ and eval/).",
)
@click.option(
    "--profiles",
    default=150,
    show_default=True,
    type=click.IntRange(min=1),
    help="People in train/ (7 images each).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same files.")
@click.option(
    "--eval-images",
    default=None,
    type=click.IntRange(min=0),
    help="Eval images  [default: half the training images]",
)
@click.option(
    "--workers",
    default=None,
    type=click.IntRange(min=1),
    help="Drawing processes  [default: one per CPU core]",
)
def synth(
    out: Path, profiles: int, seed: int, eval_images: int | None, workers: int | None
) -> None:
    """Write a demo data set in the competition layout (384 x 512 drawn people)."""
    from hpo.demo import make_demo_data

    start = time.perf_counter()
    root = make_demo_data(out, profiles, seed, eval_images=eval_images, workers=workers)
    click.echo(
        f"wrote {profiles} people ({profiles * 7} images) and eval images to {root} "
        f"in {time.perf_counter() - start:.1f} s; answers in {root / 'eval' / 'answers.csv'}"
    )


@data.command(short_help="Check a data set; list every problem.")
@click.argument("directory", metavar="DIR", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", *get_args(DataFormat)]),
    help="Layout; auto picks mask when DIR holds train/train.csv, else folder.",
)
@click.option(
    "--corrections",
    default=None,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Label corrections CSV (target,field,value) to check and apply.",
)
@click.option("--no-decode", is_flag=True, help="Skip decoding the images (much faster).")
def check(
    directory: Path,
    as_json: bool,
    fmt: str,
    corrections: Path | None,
    no_decode: bool,
) -> None:
    """Validate a data set: counts per class and factor, and every problem (exit 2 if any)."""
    from hpo.data import check_data

    if as_json or not sys.stderr.isatty():
        report = check_data(directory, format=fmt, corrections=corrections, decode=not no_decode)
    else:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("decoding images", total=None)

            def advance(done: int, total: int) -> None:
                if done % 256 == 0 or done == total:
                    bar.update(task, completed=done, total=total)

            report = check_data(
                directory,
                format=fmt,
                corrections=corrections,
                decode=not no_decode,
                advance=advance,
            )
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        _print_report(report)
    if not report.ok:
        sys.exit(2)


def _share(count: int, total: int) -> str:
    return f"{100 * count / total:.1f} %" if total else "-"


def _print_report(report: CheckReport) -> None:
    from rich.markup import escape

    from hpo.cli._console import make_console, print_table

    console = make_console()
    console.print(f"[bold]{escape(str(report.root))}[/bold] ({escape(report.layout)})")
    if report.detected is not None:
        console.print(
            f"layout {report.format} ({escape(report.layout)}), chosen by --format auto: "
            f"{escape(report.detected)}",
            soft_wrap=True,
        )
    people = f"{report.people} people, " if report.people is not None else ""
    evals = f", {report.eval_images} eval images" if report.eval_images is not None else ""
    fixes = f", {report.corrections} corrections" if report.corrections is not None else ""
    console.print(
        f"{people}{report.images} images in {len(report.class_names)} classes{evals}{fixes}"
    )

    total = sum(report.class_counts)
    print_table(
        console,
        [
            [str(i), name, str(count), _share(count, total)]
            for i, (name, count) in enumerate(
                zip(report.class_names, report.class_counts, strict=True)
            )
        ],
        columns=("class", "name", "images", "share"),
        title="images per class",
        right=("class", "images", "share"),
    )
    if report.factor_counts:
        rows = []
        for factor, counts in report.factor_counts.items():
            for value, count in counts.items():
                people_count = report.people_counts.get(factor, {}).get(value)
                rows.append(
                    [
                        factor,
                        value,
                        str(count),
                        _share(count, total),
                        "" if people_count is None else str(people_count),
                    ]
                )
        print_table(
            console,
            rows,
            columns=("factor", "value", "images", "share", "people"),
            title="images (people) per factor",
            right=("images", "share", "people"),
        )

    if report.ok:
        console.print(f"[green]no problems[/green] ({report.seconds:.1f} s)")
        return
    n = len(report.problems)
    console.print(f"[red]{n} problem{'s' if n > 1 else ''}[/red] ({report.seconds:.1f} s):")
    for problem in report.problems:
        where = report.relative(problem.file)
        if problem.line is not None:
            where += f":{problem.line}"
        console.print(f"{where}: {problem.problem}", markup=False, soft_wrap=True)
