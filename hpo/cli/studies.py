"""``hpo studies``: list, show, delete and report studies."""

from __future__ import annotations

import warnings
from pathlib import Path

import click
import optuna
from rich.markup import escape

from hpo.cli._console import make_console, print_table
from hpo.cli._display import next_step, print_trials
from hpo.cli._options import storage_option


@click.group(short_help="List, show, delete and report studies.")
def studies() -> None:
    """List, show, delete and report studies."""


@studies.command("list", short_help="List studies, their trials and best values.")
@storage_option
@click.option(
    "--dir",
    "studies_dir",
    type=click.Path(path_type=Path),
    default=Path("studies"),
    show_default=True,
    help="Folder of study files and default SQLite storages.",
)
def list_(storage: str | None, studies_dir: Path) -> None:
    """Studies in a storage, or in the storages of the study files and SQLite files under
    studies/."""
    from hpo.study import summarize_studies

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cells = []
    for row in summarize_studies(storage=storage, studies_dir=studies_dir):
        name = row.name or "?"
        if row.error is not None:
            why = "broken study file" if row.name is not None else "unreachable"
            cells.append([name, "-", "-", "-", "-", "-", f"{row.storage} ({why}: {row.error})"])
        elif row.counts is None:
            cells.append([name, "0", "-", "-", "-", "-", "(not started)"])
        else:
            cells.append(
                [
                    name,
                    str(row.n_trials),
                    str(row.counts["complete"]),
                    str(row.counts["pruned"]),
                    str(row.counts["fail"]),
                    f"{row.best:.4f}" if row.best is not None else "-",
                    row.storage,
                ]
            )
    print_table(
        make_console(),
        cells,
        columns=("study", "trials", "complete", "pruned", "failed", "best", "storage"),
        right=("trials", "best"),
    )


@studies.command("show", short_help="Top trials, counts and importances.")
@click.argument("name")
@storage_option
@click.option("--top", type=int, default=5, show_default=True, help="How many best trials.")
def show(name: str, storage: str | None, top: int) -> None:
    """Best trial, top trials, counts by state and parameter importances of study NAME."""
    from hpo.study import (
        FINISHED,
        counts_text,
        is_imported,
        kept_trials,
        load_study,
        mask_url,
        read_study_record,
        storage_for,
        top_trials,
    )

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage_for(name, cli=storage)
    study = load_study(name, url)
    console = make_console()
    console.print(
        f"[bold]study {escape(name)}[/] ({study.direction.name.lower()}) in "
        f"{escape(mask_url(url))}"
    )
    console.print(f"trials: {counts_text(study)}")
    imported = [t for t in kept_trials(study, FINISHED) if is_imported(t)]
    if imported:
        sources = ", ".join(
            f"{w.study} ({w.imported} from {w.storage})"
            for w in read_study_record(study).warm_starts
        )
        console.print(
            escape(
                f"imported: {len(imported)} trials by --warm-start from {sources or '?'}; "
                "not trained here: they count toward no --n-trials and are never the best"
            ),
            highlight=False,
        )
    ranked = top_trials(study)
    if not ranked:
        console.print("no complete trial yet")
    else:
        print_trials(console, ranked[:top], title=f"top {len(ranked[:top])}")
    if imported:
        sign = -1.0 if study.direction.name == "MAXIMIZE" else 1.0
        done = [t for t in imported if t.value is not None]
        done.sort(key=lambda t: (t.state.name != "COMPLETE", sign * float(t.value or 0.0)))
        print_trials(
            console, done[:top], title=f"top {len(done[:top])} imported (not trained here)"
        )
    if not ranked:
        return
    if len(ranked) >= 2:
        try:
            with warnings.catch_warnings():  # few trials per branch: the table says enough
                warnings.simplefilter("ignore", UserWarning)
                importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as exc:
            console.print(f"[dim]parameter importances unavailable: {escape(str(exc))}[/]")
        else:
            print_table(
                console,
                [[param, f"{value:.3f}"] for param, value in importances.items()],
                columns=("parameter", "importance"),
                title="parameter importances (fANOVA)",
                right=("importance",),
            )
    hint = next_step(study, url)
    if hint:
        console.print(escape(hint))


@studies.command("delete", short_help="Delete a study and all its trials.")
@click.argument("name")
@storage_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, storage: str | None, yes: bool) -> None:
    """Delete study NAME and all its trials from its storage."""
    from hpo.study import load_study, mask_url, state_counts, storage_for

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage_for(name, cli=storage)
    study = load_study(name, url)
    n = sum(state_counts(study).values())
    if not yes:
        click.confirm(f"delete study {name!r} with {n} trials from {mask_url(url)}?", abort=True)
    optuna.delete_study(study_name=name, storage=url)
    click.echo(f"deleted study {name} ({n} trials)")


@studies.command("report", short_help="Write an offline HTML report.")
@click.argument("name")
@storage_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="HTML file to write (default: NAME-report.html).",
)
def report(name: str, storage: str | None, out: Path | None) -> None:
    """One self-contained HTML report of study NAME that opens offline."""
    from hpo.report import write_report
    from hpo.study import load_study, storage_for

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage_for(name, cli=storage)
    study = load_study(name, url)
    path = write_report(study, out or Path(f"{name}-report.html"), storage_url=url)
    click.echo(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
