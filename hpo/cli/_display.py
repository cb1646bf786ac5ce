"""Shared rendering of trials and studies: trial lines, parameters, tables, pace, next step."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape

from hpo.cli._console import print_table
from hpo.exceptions import HPOError
from hpo.lr_check import DEAD_RATIO, ScheduleRange
from hpo.study import WorkerInfo, best_trial, mask_url, read_trial_record, storage_for

__all__ = [
    "EXPORT_FILE",
    "FOLDS_NOTE",
    "Pace",
    "flow_yaml",
    "fold_scores_text",
    "format_params",
    "format_trial",
    "next_step",
    "params_text",
    "print_trials",
]

EXPORT_FILE = "best.yaml"
"""The file the ``next:`` hint exports to: the name the README's commands use."""

FOLDS_NOTE = (
    "value: mean validation macro-F1 of the folds the trial trained; "
    "fold macro-F1: each of those folds, fold 0 first"
)
"""What the value and fold columns of a trial table mean."""


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def params_text(params: dict[str, Any]) -> str:
    """``train.optimizer.lr=0.003 train.scheduler=step train.scheduler[step].gamma=0.33``.

    Every parameter under the name it is stored under (the name the dashboard, the report,
    ``hpo export``'s provenance and the importances show), floats to 3 significant digits.
    Plain text, not markup.
    """
    return " ".join(f"{name}={_value(value)}" for name, value in params.items())


def format_params(params: dict[str, Any]) -> str:
    """:func:`params_text` as Rich markup (brackets of branch names escaped)."""
    return escape(params_text(params))


def fold_scores_text(scores: Sequence[float]) -> str:
    """``0.7312 0.7104``: each fold's macro-F1, rounded as trial values are (4 decimals)."""
    return " ".join(f"{v:.4f}" for v in scores)


def format_trial(trial: FrozenTrial) -> str:
    """One line of markup: number, outcome, parameters as stored, seconds, worker."""
    record = read_trial_record(trial)
    took = f"{record.seconds:.1f}s" if record.seconds is not None else ""
    if trial.state == TrialState.COMPLETE:
        outcome = f"[green]complete[/] {trial.value:.4f}"
    elif trial.state == TrialState.PRUNED:
        step = trial.last_step
        last = trial.intermediate_values.get(step) if step is not None else None
        at = f" at step {step}" if step is not None else ""
        score = f" ({last:.4f})" if last is not None else ""
        outcome = f"[yellow]pruned[/]{at}{score}"
    else:
        reason = escape(record.fail_reason or "")
        outcome = f"[red]{trial.state.name.lower()}[/] {reason}"
    return (
        f"trial {trial.number:>3}  {outcome}  [dim]{format_params(trial.params)}[/]  {took}"
        f"{_worker(record.worker)}"
    )


def _worker(worker: WorkerInfo | None) -> str:
    """``  [host:pid cuda:0]``: which worker ran the trial (recorded when it started)."""
    if worker is None:
        return ""
    host, pid, device = (
        v if v is not None else "?" for v in (worker.host, worker.pid, worker.device)
    )
    where = f"{host}:{pid} {device}"
    return f"  [dim]{escape(f'[{where}]')}[/]"


def print_trials(console: Console, trials: Sequence[FrozenTrial], *, title: str) -> None:
    """Trial number, value, each fold's macro-F1 and the parameters, one row per trial; an
    imported trial's number says where it came from."""
    rows = []
    for trial in trials:
        record = read_trial_record(trial)
        folds = record.fold_scores or ()
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        number = str(trial.number)
        if record.imported is not None:  # copied by a warm start: never trained here
            number += f" (imported: {record.imported.study} #{record.imported.trial})"
        rows.append([number, value, fold_scores_text(folds), params_text(trial.params)])
    print_table(
        console,
        rows,
        columns=("trial", "value", "fold macro-F1", "parameters"),
        title=title,
        note=FOLDS_NOTE,
        right=("trial", "value"),
    )


def flow_yaml(value: Any) -> str:
    """``{name: step, gamma: 0.39}``: a value as one line of YAML, as study files write it."""
    text: str = yaml.safe_dump(value, default_flow_style=True, width=float("inf"), sort_keys=False)
    return text.strip().removesuffix("...").strip()


@dataclass
class Pace:
    """The study's pace since this run started: trials per minute, and the time left.

    Counts are the study's finished trials (every worker's, on every machine), so the time
    left is the study's, at the pace seen since this run started.

    Args:
        total: The study-wide total (``--n-trials``); None with only a timeout.
        timeout: ``--timeout`` in seconds: no new trial starts after it.
        start_count: Finished trials when this run started.
        started: ``time.monotonic()`` when this run started.
    """

    total: int | None
    timeout: float | None
    start_count: int
    started: float = field(default_factory=time.monotonic)

    def text(self, finished: int, *, now: float | None = None) -> str:
        """``2.4 trials/min, about 19 min left``; ``- trials/min`` before a trial finished."""
        elapsed = max((time.monotonic() if now is None else now) - self.started, 1e-9)
        done = finished - self.start_count
        rate = done * 60.0 / elapsed if done > 0 else None
        parts = ["- trials/min" if rate is None else f"{_rate(rate)} trials/min"]
        lefts = []
        if self.total is not None and rate is not None:
            lefts.append(max(self.total - finished, 0) * 60.0 / rate)
        if self.timeout is not None:
            lefts.append(max(self.timeout - elapsed, 0.0))
        if self.total is not None and finished >= self.total:
            parts.append("total reached")
        elif lefts:
            parts.append(f"about {_duration(min(lefts))} left")
        return ", ".join(parts)

    def line(self, finished: int, *, now: float | None = None) -> str:
        """``12/50 finished, 2.4 trials/min, about 16 min left``: for log lines."""
        of = f"/{self.total}" if self.total is not None else ""
        return f"{finished}{of} finished, {self.text(finished, now=now)}"


def _rate(per_minute: float) -> str:
    return f"{per_minute:.0f}" if per_minute >= 10 else f"{per_minute:.2g}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def next_step(study: optuna.Study, storage_url: str) -> str | None:
    """``next: hpo export --study NAME --out best.yaml``, once the study has a complete trial.

    ``--storage`` is named (password masked) when ``hpo export`` would not find the study by
    its name alone. Plain text, not markup. None before the first complete trial.
    """
    if best_trial(study) is None:
        return None
    command = f"hpo export --study {shlex.quote(study.study_name)}"
    try:
        found = storage_for(study.study_name, cli=None)
    except HPOError:  # an unreadable studies/NAME.yaml: name the storage
        found = None
    if found != storage_url:
        command += f" --storage {shlex.quote(mask_url(storage_url))}"
    command += f" --out {EXPORT_FILE}"
    return (
        f"next: {command}  (the best trial as a training config; "
        f"then hpo train --config {EXPORT_FILE})"
    )


def schedule_lines(ranges: Sequence[ScheduleRange]) -> tuple[list[str], list[str]]:
    """The dry run's lines on the learning rate each schedule leaves, and its warnings."""
    lines = ["learning rate of the last epoch / the initial one, per schedule the space can pick:"]
    warnings = []
    for r in ranges:
        span = f"{r.low:.3g}" if r.low == r.high else f"{r.low:.3g} .. {r.high:.3g}"
        lines.append(f"  {r.scheduler}: {span}")
        if r.dead:
            warnings.append(
                f"warning: {r.scheduler} can end at {r.low:.1e} of the learning rate "
                f"({r.low_at}): such trials stop learning; narrow its search range so the "
                f"last epoch keeps at least {DEAD_RATIO:g} of the rate"
            )
    return lines, warnings
