"""What the parent of several workers shows: a row per worker above the study's progress bar."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

import optuna
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from hpo.cli._display import Pace
from hpo.cli._worker import best_text, study_progress
from hpo.study import finished_count
from hpo.workers import (
    Done,
    Epoch,
    Exited,
    Output,
    Started,
    TrialEnd,
    TrialStart,
    Wait,
    WorkerEvent,
    WorkerPlan,
    describe_exit,
)

__all__ = ["WorkerView"]

_log = logging.getLogger("hpo")
_POLL_SECONDS = 5.0


@dataclass
class _Row:
    plan: WorkerPlan
    pid: int | None = None
    status: str = "starting"
    trial: int | None = None
    fold_epoch: str = ""
    f1: float | None = None
    done: int = 0


class WorkerView:
    """Renders ``WorkerEvent`` s: a live table and progress bar, or prefixed log lines (quiet).

    Args:
        plans: The workers.
        study: The shared study (for the study-wide count of finished trials and the best).
        n_trials: The study-wide total (None with only a timeout).
        console: Where the live view goes (stderr).
        quiet: Log lines ``w1 | ...`` instead of the live view.
        timeout: ``--timeout`` in seconds (for the time left).
    """

    def __init__(
        self,
        plans: Sequence[WorkerPlan],
        *,
        study: optuna.Study,
        n_trials: int | None,
        console: Console,
        quiet: bool,
        timeout: float | None = None,
    ) -> None:
        self.rows = {plan.name: _Row(plan) for plan in plans}
        self.study = study
        self.quiet = quiet
        self.console = console
        self._polled = 0.0
        finished = self._finished = finished_count(study)
        self.pace = Pace(n_trials, timeout, start_count=finished)
        self.progress, self._task = study_progress(
            console, study, n_trials=n_trials, pace=self.pace
        )
        self._live: Live | None = None

    def __rich__(self) -> Group:
        """The live view as it stands: the workers' table above the study's progress bar."""
        return self._render()

    def __enter__(self) -> WorkerView:
        if not self.quiet:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._poll(force=True)
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def handle(self, event: WorkerEvent) -> None:
        """Update the row of ``event.worker`` and print what deserves a line."""
        row = self.rows[event.worker.name]
        match event.event:
            case Started(pid=pid, restart=restart):
                row.pid, row.status = pid, "starting"
                again = f", restart {restart}" if restart else ""
                self._line(
                    row,
                    f"started (pid {pid}, {row.plan.device}, {row.plan.threads} thread(s){again})",
                )
            case TrialStart(trial=trial):
                row.status, row.trial, row.fold_epoch, row.f1 = "training", trial, "", None
            case Epoch(trial=trial, fold=fold, epoch=epoch, f1=f1):
                # Folds from 1, like epochs (the message's fold is the 0-based index).
                row.fold_epoch, row.f1 = f"{fold + 1}/{epoch}", f1
                if self.quiet:
                    _log.debug(
                        "%s | trial %s fold %s epoch %s f1 %s",
                        row.plan.name,
                        trial,
                        fold,
                        epoch,
                        f1,
                    )
            case TrialEnd(line=line):
                row.status, row.done = "idle", row.done + 1
                self._poll(force=True)
                if self.quiet:  # a log has no bar: the study's pace goes on the trial's line
                    line += escape(f" | {self.pace.line(self._finished)}")
                self._line(row, line, markup=True)
            case Wait(running=running):
                row.status, row.trial = f"waiting for {running} trial(s)", None
            case Done(stopped_by=stopped_by):
                row.status = f"done ({stopped_by})"
            case Output(line=line):
                self._line(row, line)
            case Exited(code=code, restarting=restarting, failed_trials=failed):
                row.status = "finished" if code == 0 else describe_exit(code)
                row.trial = None
                if code != 0:
                    text = f"exited ({describe_exit(code)})"
                    if failed:
                        text += f"; its trial {', '.join(map(str, failed))} failed and re-queued"
                    if restarting:
                        text += "; restarting it"
                    self._line(row, text)
        self._poll()
        if self._live is not None:
            self._live.update(self._render())

    # -- internals ------------------------------------------------------------------------

    def _line(self, row: _Row, text: str, *, markup: bool = False) -> None:
        prefix = f"{row.plan.name} {row.plan.device}"
        if self.quiet:
            plain = Text.from_markup(text).plain if markup else text
            _log.info("%s | %s", prefix, plain)
            return
        body = text if markup else escape(text)
        self.console.print(f"[bold]{prefix}[/] | {body}", highlight=False)

    def _poll(self, *, force: bool = False) -> None:
        # Workers on other machines finish trials too: look at the study now and then.
        now = time.monotonic()
        if not force and now - self._polled < _POLL_SECONDS:
            return
        self._polled = now
        self._finished = finished_count(self.study)
        self.progress.update(
            self._task,
            completed=self._finished,
            best=best_text(self.study),
            pace=self.pace.text(self._finished),
        )

    def _render(self) -> Group:
        table = Table(box=None, pad_edge=False)
        for column in ("worker", "device", "pid", "trial", "fold/epoch", "val F1", "done"):
            table.add_column(column, justify="right" if column != "worker" else "left")
        table.add_column("status")
        for row in self.rows.values():
            table.add_row(
                row.plan.name,
                row.plan.device,
                str(row.pid or ""),
                "" if row.trial is None else str(row.trial),
                row.fold_epoch,
                "" if row.f1 is None else f"{row.f1:.4f}",
                str(row.done),
                escape(row.status),
            )
        return Group(table, self.progress)
