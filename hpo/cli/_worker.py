"""What one worker in this process shows: the study's progress bar or a log line per trial."""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from hpo.cli._display import format_params, format_trial, next_step
from hpo.study import WorkerResult, best_trial, counts_text, finished_count, read_trial_record
from hpo.tune import TuneSession
from hpo.workers import WorkerRequest

__all__ = ["best_text", "print_hint", "print_summary", "run_here"]

_log = logging.getLogger("hpo")


def run_here(request: WorkerRequest, *, console: Console, quiet: bool) -> None:
    """Run ``request`` in this process, drawing its progress on ``console``."""
    session = request.open_session(progress=not quiet)
    study = session.study
    console.print(
        f"study [bold]{escape(request.study)}[/] | storage {escape(session.masked_storage)} | "
        f"device {session.objective.device} | {len(session.space.params)} parameters searched",
        highlight=False,
    )
    if quiet or not console.is_terminal:  # a log gets one line per trial, no live bar
        result = session.run(
            n_trials=request.n_trials,
            timeout=request.timeout,
            on_trial_end=lambda trial: _log.info(Text.from_markup(format_trial(trial)).plain),
            on_wait=lambda running: _log.debug("waiting for %d trials of other workers", running),
        )
    else:
        result = _run_with_bar(session, request, console)
    print_summary(console, study, ran=len(result.ran))
    session.raise_for_failures(result)
    if result.stopped_by in ("n_trials", "exhausted") or request.n_trials is None:
        print_hint(console, session)


def _run_with_bar(session: TuneSession, request: WorkerRequest, console: Console) -> WorkerResult:
    study = session.study
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(
            "trials",
            total=request.n_trials,
            completed=finished_count(study),
            best=best_text(study),
        )

        def on_end(trial: FrozenTrial) -> None:
            bar.console.print(format_trial(trial), highlight=False)
            bar.update(task, completed=finished_count(study), best=best_text(study))

        def on_wait(running: int) -> None:
            bar.update(
                task,
                completed=finished_count(study),
                best=best_text(study),
                description=f"waiting for {running} trial(s) of other workers",
            )

        result = session.run(
            n_trials=request.n_trials,
            timeout=request.timeout,
            on_trial_end=on_end,
            on_wait=on_wait,
        )
        bar.update(
            task, completed=finished_count(study), best=best_text(study), description="trials"
        )
    return result


def best_text(study: optuna.Study) -> str:
    """``best 0.7321 (trial 14)`` for a progress bar, or ``best -`` before a complete trial."""
    best = best_trial(study)
    return "best -" if best is None else f"best {best.value:.4f} (trial {best.number})"


def print_hint(console: Console, session: TuneSession) -> None:
    """The next command worth running on the study, if there is one."""
    hint = next_step(session.study, session.storage_url)
    if hint:
        console.print(escape(hint))


def print_summary(
    console: Console, study: optuna.Study, *, ran: int, ran_label: str = "this worker ran"
) -> None:
    """The study's table: trials run here, counts by state, the best trial and its folds."""
    table = Table(
        title=f"study {escape(study.study_name)}", title_justify="left", show_header=False
    )
    table.add_row(ran_label, str(ran))
    table.add_row("trials", counts_text(study))
    best = best_trial(study)
    if best is None:
        table.add_row("best", "no complete trial yet")
    else:
        folds = read_trial_record(best).fold_scores or ()
        table.add_row(
            "best trial",
            f"{best.number}: {best.value:.4f}"
            + (f" (folds {' '.join(f'{v:.3f}' for v in folds)})" if folds else ""),
        )
        table.add_row("best params", format_params(best.params))
    console.print(table)
