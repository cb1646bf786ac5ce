"""What the supervisor of several worker processes shows, and the exit code its outcome gives."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import click
from rich.console import Console
from rich.markup import escape

from hpo.cli._live import WorkerView
from hpo.cli._progress import progress_bar
from hpo.cli._worker import print_hint, print_summary, print_warm_start
from hpo.exceptions import ConfigError
from hpo.study import finished_count
from hpo.workers import (
    Died,
    Outcome,
    PlanError,
    Stopped,
    WorkerFailed,
    WorkerPlan,
    WorkerRequest,
    describe_exit,
    judge,
    plan_workers,
    supervise,
    supervisor_session,
)

__all__ = ["PLAN_FLAGS", "plan", "run_supervised"]

_log = logging.getLogger("hpo")

# The plan's settings, as `hpo run` calls them.
PLAN_FLAGS = {
    "devices": "--devices",
    "workers_per_device": "--workers-per-device",
    "workers": "--workers",
    "force_workers": "--force-workers",
}


def plan(
    *,
    devices: str | None,
    workers_per_device: int | None,
    workers: int | None,
    force_workers: bool = False,
) -> list[WorkerPlan] | None:
    """The worker processes the flags ask for (None: one worker in this process).

    Raises:
        ConfigError: The flags make no plan; the message names the flags at fault.
    """
    try:
        return plan_workers(
            devices=devices,
            workers_per_device=workers_per_device,
            workers=workers,
            force=force_workers,
        )
    except PlanError as exc:
        raise ConfigError(exc.render(PLAN_FLAGS)) from None


def run_supervised(
    request: WorkerRequest,
    plans: Sequence[WorkerPlan],
    *,
    console: Console,
    quiet: bool,
    restart_dead: bool,
) -> None:
    """Start, watch and stop one worker process per plan; exit 1 if the total was not reached."""
    with progress_bar("decoding images", enabled=not quiet) as advance:
        session = supervisor_session(request, advance=advance)
    study, n_trials = session.study, request.n_trials
    print_warm_start(console, session)
    where = f"study [bold]{escape(request.study)}[/] | storage {escape(session.masked_storage)}"
    if n_trials is not None and finished_count(study) >= n_trials:
        console.print(
            f"{where} | already holds {finished_count(study)} of {n_trials} finished trials: "
            "no worker started",
            highlight=False,
        )
        print_summary(console, study, ran=0, ran_label="these workers ran")
        print_hint(console, session)
        return
    devices = list(dict.fromkeys(p.device for p in plans))
    slots = ", ".join(f"{sum(p.device == d for p in plans)} x {d}" for d in devices)
    console.print(
        f"{where} | {len(plans)} workers: {slots}, {plans[0].threads} CPU thread(s) each | "
        f"{len(session.space.params)} parameters searched",
        highlight=False,
    )
    # Off a terminal (nohup, docker logs, CI) a log gets prefixed lines, never a live view.
    view = WorkerView(
        plans,
        study=study,
        n_trials=n_trials,
        console=console,
        quiet=quiet or not console.is_terminal,
        timeout=request.timeout,
    )
    with view:
        result = supervise(
            request, plans, session=session, on_event=view.handle, restart_dead=restart_dead
        )
    print_summary(console, study, ran=result.trials_ended, ran_label="these workers ran")
    _report(console, judge(result, finished=finished_count(study), n_trials=n_trials))
    print_hint(console, session)


def _report(console: Console, outcome: Outcome) -> None:
    """Return when the study holds its total, or when every worker stopped normally.

    A worker stops normally at ``--timeout`` or when the sampler has nothing left to draw
    (grid), as one worker in the process would, exiting 0.

    Raises:
        ConfigError: A worker exited 2 (a user error, such as too many failed trials in a
            row): its own error line, naming the worker (exit 2).
        click.exceptions.Exit: Workers died (exit 1).
    """
    n_trials = outcome.n_trials
    held = f"{outcome.finished} of {n_trials}" if n_trials is not None else str(outcome.finished)
    if isinstance(outcome, Stopped):
        reasons = ", ".join(outcome.reasons) or "no reason given"
        console.print(
            escape(f"the study holds {held} finished trials: the workers stopped ({reasons})"),
            highlight=False,
        )
    elif isinstance(outcome, WorkerFailed):
        too = f"{', '.join(outcome.others)} exited 2 too; " if outcome.others else ""
        raise ConfigError(
            f"{outcome.worker}: {outcome.error} ({too}the study holds {held} finished trials)"
        )
    elif isinstance(outcome, Died):
        exits = ", ".join(f"{w} {describe_exit(c)}" for w, c in outcome.exits)
        what = "the study did not reach its total" if n_trials is not None else "workers died"
        _log.error("error: %s (%s finished trials); workers: %s", what, held, exits)
        raise click.exceptions.Exit(1)
