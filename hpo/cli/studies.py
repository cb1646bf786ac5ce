"""``hpo studies``: list, show, delete and report studies."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import click
import optuna
from rich.console import Console
from rich.table import Table

from hpo.cli._display import trial_table
from hpo.cli._options import storage_option


@click.group()
def studies() -> None:
    """List, show, delete and report studies."""


@studies.command("list")
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
    """Studies in a storage, or in the default SQLite files under studies/."""
    from hpo.study import create_storage, mask_url, resolve_storage_url

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    urls: list[str]
    url = storage or os.environ.get("HPO_STORAGE")
    if url:
        urls = [resolve_storage_url("", cli=url, spec=None, studies_dir=studies_dir)]
    else:
        urls = [f"sqlite:///{p}" for p in sorted(studies_dir.glob("*.db"))]
    table = Table(title_justify="left")
    for column in ("study", "trials", "complete", "pruned", "failed", "best", "storage"):
        table.add_column(column, justify="right" if column in ("trials", "best") else "left")
    seen = set()
    for u in urls:
        for summary in optuna.get_all_study_summaries(create_storage(u, heartbeat_interval=None)):
            seen.add(summary.study_name)
            study = optuna.load_study(study_name=summary.study_name, storage=u)
            trials = study.get_trials(deepcopy=False)
            states = [t.state for t in trials]
            best = summary.best_trial.value if summary.best_trial is not None else None
            table.add_row(
                summary.study_name,
                str(len(trials)),
                str(states.count(optuna.trial.TrialState.COMPLETE)),
                str(states.count(optuna.trial.TrialState.PRUNED)),
                str(states.count(optuna.trial.TrialState.FAIL)),
                f"{best:.4f}" if best is not None else "-",
                mask_url(u),
            )
    if not url:
        for path in sorted(studies_dir.glob("*.yaml")):
            if path.stem not in seen:
                table.add_row(path.stem, "0", "-", "-", "-", "-", "(not started)")
    Console().print(table)


@studies.command("show")
@click.argument("name")
@storage_option
@click.option("--top", type=int, default=5, show_default=True, help="How many best trials.")
def show(name: str, storage: str | None, top: int) -> None:
    """Best trial, top trials, counts by state and parameter importances of study NAME."""
    from hpo.study import load_study, mask_url, storage_for, study_counts

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage_for(name, cli=storage)
    study = load_study(name, url)
    console = Console()
    counts = study_counts(study)
    console.print(f"[bold]study {name}[/] ({study.direction.name.lower()}) in {mask_url(url)}")
    console.print("trials: " + (", ".join(f"{v} {k}" for k, v in counts.items() if v) or "none"))
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        console.print("no complete trial yet")
        return
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = sorted(complete, key=lambda t: t.value or 0.0, reverse=reverse)[:top]
    console.print(trial_table(best, title=f"top {len(best)}"))
    if len(complete) >= 2:
        try:
            with warnings.catch_warnings():  # few trials per branch: the table says enough
                warnings.simplefilter("ignore", UserWarning)
                importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError) as exc:
            console.print(f"[dim]parameter importances unavailable: {exc}[/]")
        else:
            table = Table(title="parameter importances (fANOVA)", title_justify="left")
            table.add_column("parameter")
            table.add_column("importance", justify="right")
            for param, value in importances.items():
                table.add_row(param, f"{value:.3f}")
            console.print(table)


@studies.command("delete")
@click.argument("name")
@storage_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def delete(name: str, storage: str | None, yes: bool) -> None:
    """Delete study NAME and all its trials from its storage."""
    from hpo.study import load_study, mask_url, storage_for

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    url = storage_for(name, cli=storage)
    study = load_study(name, url)
    n = len(study.get_trials(deepcopy=False))
    if not yes:
        click.confirm(f"delete study {name!r} with {n} trials from {mask_url(url)}?", abort=True)
    optuna.delete_study(study_name=name, storage=url)
    click.echo(f"deleted study {name} ({n} trials)")


@studies.command("report")
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
