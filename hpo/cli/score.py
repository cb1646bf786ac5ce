"""``hpo score``: macro-F1, accuracy and per-class F1 of a submission against the truth."""

from __future__ import annotations

import json
from pathlib import Path

import click

__all__ = ["score"]

_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command(short_help="Score a submission: macro-F1, per class.")
@click.option(
    "--pred",
    required=True,
    type=_FILE,
    help="Predictions as hpo predict writes them: a CSV ImageID,ans (competition layout) or "
    "path,pred,class_name (folder runs).",
)
@click.option(
    "--truth",
    required=True,
    type=click.Path(path_type=Path),
    help="True labels: a CSV with ImageID or path and a class id (ans, pred or label) and/or "
    "class_name (e.g. path,class_name); or a folder of class folders, labels from the folder "
    "names (a data root holding train/ and eval/: its eval/). Rows join on the id or path "
    "relative to the folder, else on the file name; classes compare by id, else by name.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the scores as JSON.")
def score(pred: Path, truth: Path, as_json: bool) -> None:
    """Score predictions: macro-F1 (the competition metric), accuracy, per-class F1."""
    from hpo.cli._console import make_console, print_table
    from hpo.score import score_files

    report = score_files(pred, truth)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    rows = [
        [
            str(c.label),
            c.name,
            f"{c.f1:.4f}",
            f"{c.precision:.4f}",
            f"{c.recall:.4f}",
            str(c.support),
            str(c.predicted),
        ]
        for c in report.per_class
    ]
    console = make_console()
    columns = ("class", "name", "F1", "precision", "recall", "support", "predicted")
    right = [name for name in columns if name != "name"]
    print_table(console, rows, columns=columns, title=f"{pred} vs {truth}", right=right)
    console.print(
        f"macro-F1 {report.macro_f1:.4f}  accuracy {report.accuracy:.4f}  "
        f"({report.n} rows, {len(report.per_class)} classes)"
    )
