"""What one worker in this process shows: the study's progress bar or a log line per trial."""

from __future__ import annotations

import logging
import os

import optuna
import torch
from optuna.trial import FrozenTrial
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from hpo.cli._console import print_table
from hpo.cli._display import Pace, fold_scores_text, format_trial, next_step, params_text
from hpo.cli._progress import progress_bar
from hpo.study import WorkerResult, best_trial, counts_text, finished_count, read_trial_record
from hpo.tune import TuneSession
from hpo.workers import WorkerRequest, available_cores

__all__ = [
    "best_text",
    "busy_text",
    "device_text",
    "print_hint",
    "print_summary",
    "print_warm_start",
    "run_here",
]

_log = logging.getLogger("hpo")


def run_here(request: WorkerRequest, *, console: Console, quiet: bool) -> None:
    """Run ``request`` in this process, drawing its progress on ``console``."""
    with progress_bar("decoding images", enabled=not quiet) as advance:
        session = request.open_session(advance=advance)
    study = session.study
    busy = busy_text(_load_average(), available_cores())
    console.print(
        f"study [bold]{escape(request.study)}[/] | storage {escape(session.masked_storage)} | "
        f"{device_text(session.objective.device, torch.get_num_threads())} | "
        f"{len(session.space.params)} parameters searched",
        highlight=False,
    )
    if busy:
        console.print(busy, highlight=False)
    print_warm_start(console, session)
    pace = Pace(request.n_trials, request.timeout, start_count=finished_count(study))
    if quiet or not console.is_terminal:  # a log gets one line per trial, no live bar

        def on_end(trial: FrozenTrial) -> None:
            line = Text.from_markup(format_trial(trial)).plain
            _log.info("%s | %s", line, pace.line(finished_count(study)))

        result = session.run(
            n_trials=request.n_trials,
            timeout=request.timeout,
            on_trial_end=on_end,
            on_wait=lambda running: _log.debug("waiting for %d trials of other workers", running),
        )
    else:
        result = _run_with_bar(session, request, console, pace)
    print_summary(console, study, ran=len(result.ran))
    session.raise_for_failures(result)
    if result.stopped_by in ("n_trials", "exhausted") or request.n_trials is None:
        print_hint(console, session)


def study_progress(
    console: Console, study: optuna.Study, *, n_trials: int | None, pace: Pace
) -> tuple[Progress, TaskID]:
    """The study's progress bar, built here once for one worker and for the live view of
    several: trials finished of ``n_trials``, the best trial, the pace, the time elapsed."""
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
        TextColumn("{task.fields[pace]}"),
        TimeElapsedColumn(),
        console=console,
    )
    finished = finished_count(study)
    task = bar.add_task(
        "trials",
        total=n_trials,
        completed=finished,
        best=best_text(study),
        pace=pace.text(finished),
    )
    return bar, task


def _run_with_bar(
    session: TuneSession, request: WorkerRequest, console: Console, pace: Pace
) -> WorkerResult:
    study = session.study
    bar, task = study_progress(console, study, n_trials=request.n_trials, pace=pace)
    with bar:

        def on_end(trial: FrozenTrial) -> None:
            bar.console.print(format_trial(trial), highlight=False)
            finished = finished_count(study)
            bar.update(task, completed=finished, best=best_text(study), pace=pace.text(finished))

        def on_wait(running: int) -> None:
            finished = finished_count(study)
            bar.update(
                task,
                completed=finished,
                best=best_text(study),
                pace=pace.text(finished),
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


def device_text(device: torch.device, threads: int) -> str:
    """``device cpu, 2 CPU threads`` or ``device cuda:0 (NVIDIA H100 80GB HBM3), 2 CPU threads``.

    What one worker trains on, said once at start: a trial's time depends on it.
    """
    where = str(device)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        where += f" ({torch.cuda.get_device_name(index)})"
    return f"device {where}, {threads} CPU thread{'s' if threads != 1 else ''}"


def busy_text(load: float | None, cores: int) -> str | None:
    """``machine busy: load 7.9 on 2 cores, trials run slower``; None when it is not busy.

    A load average above the core count means other processes want the cores too: each trial
    gets a share of them and takes longer than on a quiet machine (several times as long).
    """
    if load is None or load <= cores:
        return None
    return f"machine busy: load {load:.1f} on {cores} cores, trials run slower"


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not available (Windows)
        return None


def best_text(study: optuna.Study) -> str:
    """``best 0.7321 (trial 14)`` for a progress bar, or ``best -`` before a complete trial."""
    best = best_trial(study)
    return "best -" if best is None else f"best {best.value:.4f} (trial {best.number})"


def print_warm_start(console: Console, session: TuneSession) -> None:
    """What this run enqueued (``study.enqueue``) and imported (``--warm-start``), if anything."""
    if session.enqueued:
        n = session.enqueued
        console.print(
            f"enqueued {n} configuration{'s' if n != 1 else ''} of study.enqueue: "
            "the next trials try them",
            highlight=False,
        )
    if session.warm_start is not None:
        console.print(escape(session.warm_start.describe()), highlight=False)


def print_hint(console: Console, session: TuneSession) -> None:
    """The next command worth running on the study, if there is one."""
    hint = next_step(session.study, session.storage_url)
    if hint:
        console.print(escape(hint))


def print_summary(
    console: Console, study: optuna.Study, *, ran: int, ran_label: str = "this worker ran"
) -> None:
    """The study's summary: trials run here, counts by state, the best trial and its folds.

    A table on a terminal, ``key: value`` lines in a log (:func:`print_table`).
    """
    rows = [[ran_label, str(ran)], ["trials", counts_text(study)]]
    best = best_trial(study)
    if best is None:
        rows.append(["best", "no complete trial yet"])
    else:
        folds = read_trial_record(best).fold_scores or ()
        rows.append(
            [
                "best trial",
                f"{best.number}: {best.value:.4f}"
                + (f" (fold macro-F1 {fold_scores_text(folds)})" if folds else ""),
            ]
        )
        rows.append(["best params", params_text(best.params)])
    print_table(console, rows, title=f"study {study.study_name}")
