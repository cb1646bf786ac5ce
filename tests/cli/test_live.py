"""The supervisor's live view: a row per worker above the study's progress bar."""

from __future__ import annotations

import io
import re
from typing import Any

import optuna
from optuna.trial import create_trial
from rich.console import Console

from hpo.cli._live import WorkerView
from hpo.workers import (
    Epoch,
    Event,
    Exited,
    Started,
    TrialEnd,
    TrialStart,
    Wait,
    WorkerEvent,
    WorkerPlan,
)

PLANS = [WorkerPlan("w1", "cuda:0", 4), WorkerPlan("w2", "cuda:1", 4), WorkerPlan("w3", "cpu", 4)]


def rendered(view: WorkerView) -> list[str]:
    """The view's lines as a terminal would show them (no colour), trailing spaces dropped."""
    out = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=True)
    out.print(view)
    assert isinstance(out.file, io.StringIO)
    return [line.rstrip() for line in out.file.getvalue().splitlines()]


def send(view: WorkerView, worker: int, event: Event) -> None:
    view.handle(WorkerEvent(PLANS[worker - 1], event))


def test_one_row_per_worker_above_the_study_progress() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(create_trial(value=0.625))
    lines_out = io.StringIO()
    console = Console(file=lines_out, width=120, color_system=None, force_terminal=True)
    view = WorkerView(PLANS, study=study, n_trials=4, console=console, quiet=False)

    send(view, 1, Started(pid=101, restart=0))
    send(view, 2, Started(pid=102, restart=0))
    send(view, 3, Started(pid=103, restart=0))
    # w1 trains trial 3: fold 2 (index 1), epoch 2; w2 finished trial 1 and waits.
    send(view, 1, TrialStart(trial=3))
    send(view, 1, Epoch(trial=3, fold=1, epoch=2, f1=0.51234))
    send(view, 2, TrialStart(trial=1))
    send(view, 2, Epoch(trial=1, fold=0, epoch=1, f1=0.25))
    study.add_trial(create_trial(value=0.75))
    send(view, 2, TrialEnd(trial=1, state="COMPLETE", line="trial   1  [green]complete[/]"))
    send(view, 2, Wait(running=1))
    # w3 died and was not restarted.
    send(view, 3, TrialStart(trial=2))
    send(view, 3, Exited(code=-9, restarting=False, failed_trials=(2,)))

    lines = rendered(view)
    # Columns: worker, device, pid, trial, fold/epoch, val F1, done, status (blank cells gone).
    cells = [" ".join(line.split()) for line in lines[:4]]
    assert cells == [
        "worker device pid trial fold/epoch val F1 done status",
        "w1 cuda:0 101 3 2/2 0.5123 0 training",
        "w2 cuda:1 102 1/1 0.2500 1 waiting for 1 trial(s)",
        "w3 cpu 103 0 killed by SIGKILL",
    ]
    # Below the rows: the study-wide progress (2 of 4 finished) and the best trial so far.
    progress = lines[4]
    assert progress.startswith("trials") and "2/4" in progress
    assert "best 0.7500 (trial 1)" in progress
    # Lines printed above the live view: starts, finished trials, deaths, prefixed.
    printed = lines_out.getvalue()
    assert "w1 cuda:0 | started (pid 101, cuda:0, 4 thread(s))" in printed
    assert "w2 cuda:1 | trial   1  complete" in printed
    assert "w3 cpu | exited (killed by SIGKILL); its trial 2 failed and re-queued" in printed


def test_quiet_gives_prefixed_log_lines_and_no_live_view(caplog: Any) -> None:
    caplog.set_level("INFO", logger="hpo")
    study = optuna.create_study(direction="maximize")
    out = io.StringIO()
    console = Console(file=out, width=120, color_system=None, force_terminal=True)
    with WorkerView(PLANS[:1], study=study, n_trials=2, console=console, quiet=True) as view:
        send(view, 1, Started(pid=101, restart=0))
        send(view, 1, TrialEnd(trial=0, state="COMPLETE", line="trial   0  [green]complete[/]"))
    assert out.getvalue() == ""
    assert "w1 cuda:0 | started (pid 101, cuda:0, 4 thread(s))" in caplog.text
    assert "w1 cuda:0 | trial   0  complete" in caplog.text  # markup gone


def test_the_view_shows_trials_per_minute_and_the_time_left(caplog: Any) -> None:
    study = optuna.create_study(direction="maximize")
    console = Console(file=io.StringIO(), width=160, color_system=None, force_terminal=True)
    view = WorkerView(PLANS, study=study, n_trials=4, console=console, quiet=False)
    progress = rendered(view)[4]
    assert "- trials/min" in progress  # nothing finished since the view started
    send(view, 1, TrialStart(trial=0))
    study.add_trial(create_trial(value=0.5))
    send(view, 1, TrialEnd(trial=0, state="COMPLETE", line="trial   0  [green]complete[/]"))
    progress = rendered(view)[4]
    assert "1/4" in progress and re.search(r"[\d.]+ trials/min, about \d+ (s|min) left", progress)

    # A log has no bar: each finished trial's line carries the study's pace.
    caplog.set_level("INFO", logger="hpo")
    quiet = WorkerView(PLANS[:1], study=study, n_trials=4, console=console, quiet=True)
    study.add_trial(create_trial(value=0.25))
    send(quiet, 1, TrialEnd(trial=1, state="COMPLETE", line="trial   1  [green]complete[/]"))
    assert re.search(
        r"w1 cuda:0 \| trial   1  complete \| 2/4 finished, [\d.]+ trials/min, about \d+ (s|min) "
        r"left$",
        caplog.text.splitlines()[-1],
    )
