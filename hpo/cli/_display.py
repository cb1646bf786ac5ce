"""Shared terminal rendering of trials and studies (rich)."""

from __future__ import annotations

import shlex
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.markup import escape
from rich.table import Table

from hpo.exceptions import HPOError
from hpo.study import WorkerInfo, best_trial, mask_url, read_trial_record, storage_for

__all__ = ["format_params", "format_trial", "next_step", "trial_table"]


def _short(name: str) -> str:
    return name.removeprefix("train.").removeprefix("data.")


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def format_params(params: dict[str, Any]) -> str:
    """``lr=0.003 scheduler=step(step_size=2 gamma=0.33)``: branch parameters beside the branch."""
    branch_params: dict[str, list[str]] = {}
    for key, value in params.items():
        if "[" in key:
            path, _, rest = key.partition("[")
            param = rest.partition("].")[2]
            branch_params.setdefault(path, []).append(f"{param}={_value(value)}")
    parts = []
    for key, value in params.items():
        if "[" in key:
            continue
        inner = branch_params.get(key)
        suffix = f"({' '.join(inner)})" if inner else ""
        parts.append(f"{_short(key)}={_value(value)}{suffix}")
    return escape(" ".join(parts))


def format_trial(trial: FrozenTrial) -> str:
    """One line: number, outcome, key parameters, seconds."""
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


def trial_table(trials: list[FrozenTrial], *, title: str) -> Table:
    """Trial number, value, fold scores and parameters; ``title`` is plain text, not markup."""
    table = Table(title=escape(title), title_justify="left")
    table.add_column("trial", justify="right")
    table.add_column("value", justify="right")
    table.add_column("folds")
    table.add_column("parameters")
    for trial in trials:
        folds = read_trial_record(trial).fold_scores or ()
        table.add_row(
            str(trial.number),
            f"{trial.value:.4f}" if trial.value is not None else "-",
            " ".join(f"{v:.3f}" for v in folds),
            format_params(trial.params),
        )
    return table


def next_step(study: optuna.Study, storage_url: str) -> str | None:
    """``next: hpo export --study NAME``, once the study has a complete trial; else None.

    ``--storage`` is named (password masked) when ``hpo export`` would not find the study by
    its name alone. Plain text, not markup.
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
    return f"next: {command}  (the best trial as a training config for `hpo train`)"
