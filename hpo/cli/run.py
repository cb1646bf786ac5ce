"""``hpo run``: run trials of a study as one worker of the shared study."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpo.cli._console import make_console
from hpo.cli._display import format_params, format_trial, next_step
from hpo.cli._options import device_option, set_option, storage_option
from hpo.cli._signals import stop_on_signals
from hpo.exceptions import ConfigError
from hpo.study import best_trial, counts_text, finished_count

if TYPE_CHECKING:
    from hpo.supervise import SupervisorResult, WorkerPlan

_log = logging.getLogger("hpo")


@click.command(short_help="Run trials of a study (one or more workers).")
@click.option("--study", "name", required=True, help="Study name: reads studies/NAME.yaml.")
@click.option(
    "--config", type=click.Path(path_type=Path), help="Study file other than studies/NAME.yaml."
)
@click.option(
    "--n-trials",
    type=int,
    default=None,
    help="Study-wide total of finished (complete + pruned) trials over all workers. "
    "One of --n-trials or --timeout is required.",
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="Start no new trial after this many seconds. One of --n-trials or --timeout is required.",
)
@storage_option
@device_option
@set_option
@click.option(
    "--allow-mismatch",
    is_flag=True,
    help="Join a study whose stored study file or data fingerprint differ.",
)
@click.option("--quiet", is_flag=True, help="Log lines only: no progress bar.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Check the study file and data, print the search space and one sampled trial's "
    "config; train nothing, write nothing to the storage.",
)
@click.option(
    "--tensorboard",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write TensorBoard runs of the trials here (same as --set study.tensorboard=DIR).",
)
@click.option(
    "--devices",
    default=None,
    metavar="all|cuda:K,...",
    help="Start one supervised worker process per listed GPU (all: every GPU of the machine).",
)
@click.option(
    "--workers-per-device",
    type=int,
    default=None,
    metavar="M",
    help="Worker processes per device of --devices (default 1).",
)
@click.option(
    "--workers",
    type=int,
    default=None,
    metavar="N",
    help="Start N supervised CPU worker processes, dividing the cores among them.",
)
@click.option(
    "--restart-dead",
    is_flag=True,
    help="With --devices/--workers: start a worker again when it is killed or crashes.",
)
# A supervised worker: the parent's pid, so the child stops when its parent is gone.
@click.option("--worker-of", type=int, default=None, hidden=True)
@click.option("--threads", type=int, default=None, hidden=True)
def run(**options: Any) -> None:
    """Run trials of study NAME until it holds --n-trials finished trials.

    One of --n-trials or --timeout is required (both: whichever comes first).

    Without --devices or --workers this process is one worker of the study. With them it
    starts and supervises one worker process per device slot (exit 0 when the study reached
    its total, 1 when workers died before it did, 130 on SIGINT, 143 on SIGTERM).
    """
    with stop_on_signals():
        _run(**options)


def _run(
    name: str,
    *,
    config: Path | None,
    n_trials: int | None,
    timeout: float | None,
    storage: str | None,
    device: str,
    overrides: tuple[str, ...],
    allow_mismatch: bool,
    quiet: bool,
    dry_run: bool,
    tensorboard: Path | None,
    devices: str | None,
    workers_per_device: int | None,
    workers: int | None,
    restart_dead: bool,
    worker_of: int | None,
    threads: int | None,
) -> None:
    from hpo.supervise import plan_workers
    from hpo.train import resolve_device, set_threads
    from hpo.tune import prepare_session

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if dry_run:
        _dry_run(name, config=config, overrides=overrides, storage=storage)
        return

    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials must be at least 1, got {n_trials}")
    if n_trials is None and timeout is None:
        raise ConfigError("give --n-trials N (study-wide total) or --timeout SECONDS")
    if tensorboard is not None:
        from hpo.tensorboard import require_tensorboard

        require_tensorboard()  # before the data is loaded
        overrides = (*overrides, f"study.tensorboard={tensorboard}")
    plans = plan_workers(devices=devices, workers_per_device=workers_per_device, workers=workers)
    if plans is not None:
        _supervise(
            name,
            plans,
            config=config,
            n_trials=n_trials,
            timeout=timeout,
            storage=storage,
            overrides=overrides,
            allow_mismatch=allow_mismatch,
            quiet=quiet,
            restart_dead=restart_dead,
        )
        return
    if threads is not None:
        set_threads(threads)
    if worker_of is not None:
        _supervised_worker(
            name,
            parent=worker_of,
            config=config,
            n_trials=n_trials,
            timeout=timeout,
            storage=storage,
            device=device,
            overrides=overrides,
            allow_mismatch=allow_mismatch,
        )
        return
    console = make_console(stderr=True)
    torch_device = resolve_device(device)
    session = prepare_session(
        name,
        config=config,
        overrides=overrides,
        storage=storage,
        device=torch_device,
        allow_mismatch=allow_mismatch,
        progress=not quiet,
        n_trials=n_trials,
    )
    study = session.study
    console.print(
        f"study [bold]{escape(name)}[/] | storage {escape(session.masked_storage)} | device "
        f"{torch_device} | {len(session.space.params)} parameters searched",
        highlight=False,
    )

    def best_text() -> str:
        return _best_text(study)

    def finished() -> int:
        return finished_count(study)

    if quiet or not console.is_terminal:  # a log gets one line per trial, no live bar

        def on_end(trial: FrozenTrial) -> None:
            _log.info(_plain(format_trial(trial)))

        def on_wait(running: int) -> None:
            _log.debug("waiting for %d trials of other workers", running)

        result = session.run(
            n_trials=n_trials, timeout=timeout, on_trial_end=on_end, on_wait=on_wait
        )
    else:
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[best]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("trials", total=n_trials, completed=finished(), best=best_text())

            def on_end(trial: FrozenTrial) -> None:
                bar.console.print(format_trial(trial), highlight=False)
                bar.update(task, completed=finished(), best=best_text())

            def on_wait(running: int) -> None:
                bar.update(
                    task,
                    completed=finished(),
                    best=best_text(),
                    description=f"waiting for {running} trial(s) of other workers",
                )

            result = session.run(
                n_trials=n_trials, timeout=timeout, on_trial_end=on_end, on_wait=on_wait
            )
            bar.update(task, completed=finished(), best=best_text(), description="trials")

    _summary(console, study, ran=len(result.ran))
    if result.stopped_by == "failures":
        raise ConfigError(
            f"stopped after {session.spec.study.max_consecutive_failures} failed trials in a row; "
            f"last reason: {_last_failure(study)}"
        )
    if result.stopped_by in ("n_trials", "exhausted") or n_trials is None:
        hint = next_step(study, session.storage_url)
        if hint:
            console.print(escape(hint))


def _supervised_worker(
    name: str,
    *,
    parent: int,
    config: Path | None,
    n_trials: int | None,
    timeout: float | None,
    storage: str | None,
    device: str,
    overrides: tuple[str, ...],
    allow_mismatch: bool,
) -> None:
    """One worker started by ``_supervise``: JSON events on stdout, nothing else printed."""
    from hpo.supervise import watch_parent
    from hpo.train import resolve_device
    from hpo.tune import prepare_session

    watch_parent(parent)

    def emit(event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    session = prepare_session(
        name,
        config=config,
        overrides=overrides,
        storage=storage,
        device=resolve_device(device),
        allow_mismatch=allow_mismatch,
        n_trials=n_trials,
    )
    session.objective.on_event = emit
    emit({"event": "ready", **session.objective.worker})

    def on_end(trial: FrozenTrial) -> None:
        emit(
            {
                "event": "trial_end",
                "trial": trial.number,
                "state": trial.state.name,
                "line": format_trial(trial),
            }
        )

    result = session.run(
        n_trials=n_trials,
        timeout=timeout,
        on_trial_end=on_end,
        on_wait=lambda running: emit({"event": "wait", "running": running}),
    )
    emit({"event": "done", "ran": len(result.ran), "stopped_by": result.stopped_by})
    if result.stopped_by == "failures":
        raise ConfigError(
            f"stopped after {session.spec.study.max_consecutive_failures} failed trials in a row; "
            f"last reason: {_last_failure(session.study)}"
        )


def _supervise(
    name: str,
    plans: list[WorkerPlan],
    *,
    config: Path | None,
    n_trials: int | None,
    timeout: float | None,
    storage: str | None,
    overrides: tuple[str, ...],
    allow_mismatch: bool,
    quiet: bool,
    restart_dead: bool,
) -> None:
    """Start, watch and stop one worker process per plan; exit 1 if the total was not reached."""
    import torch

    from hpo.cli._live import WorkerView
    from hpo.supervise import Supervisor
    from hpo.tune import prepare_session

    console = make_console(stderr=True)
    # Everything a user can get wrong fails here, once, before any worker starts and before
    # any image is decoded (the study file, the data's file table, the stored fingerprint);
    # then the data is decoded into the machine's shared cache once, and the workers open it
    # warm. A study that already holds its total decodes nothing and starts no worker.
    session = prepare_session(
        name,
        config=config,
        overrides=overrides,
        storage=storage,
        device=torch.device("cpu"),
        allow_mismatch=allow_mismatch,
        progress=not quiet,
        n_trials=n_trials,
    )
    study = session.study
    if n_trials is not None and finished_count(study) >= n_trials:
        console.print(
            f"study [bold]{escape(name)}[/] | storage {escape(session.masked_storage)} | already "
            f"holds {finished_count(study)} of {n_trials} finished trials: no worker started",
            highlight=False,
        )
        _summary(console, study, ran=0, ran_label="these workers ran")
        hint = next_step(study, session.storage_url)
        if hint:
            console.print(escape(hint))
        return
    devices = list(dict.fromkeys(p.device for p in plans))
    slots = ", ".join(f"{sum(p.device == d for p in plans)} x {d}" for d in devices)
    console.print(
        f"study [bold]{escape(name)}[/] | storage {escape(session.masked_storage)} | {len(plans)} "
        f"workers: {slots}, {plans[0].threads} CPU thread(s) each | "
        f"{len(session.space.params)} parameters searched",
        highlight=False,
    )
    started = time.monotonic()
    parent = os.getpid()

    def command(plan: WorkerPlan) -> list[str]:
        argv = [sys.executable, "-m", "hpo", "run", "--study", name, "--quiet"]
        argv += ["--device", plan.device, "--threads", str(plan.threads)]
        argv += ["--worker-of", str(parent)]
        if config is not None:
            argv += ["--config", str(config)]
        if n_trials is not None:
            argv += ["--n-trials", str(n_trials)]
        if timeout is not None:
            argv += ["--timeout", str(max(0.0, timeout - (time.monotonic() - started)))]
        for override in overrides:
            argv += ["--set", override]
        if allow_mismatch:
            argv.append("--allow-mismatch")
        return argv

    # The resolved URL travels in the environment, never on a command line `ps` shows.
    env = {**os.environ, "HPO_STORAGE": session.storage_url}
    # Off a terminal (nohup, docker logs, CI) a log gets prefixed lines, never a live view.
    view = WorkerView(
        plans,
        study=study,
        n_trials=n_trials,
        console=console,
        quiet=quiet or not console.is_terminal,
    )
    supervisor = Supervisor(
        plans,
        command=command,
        on_event=view.handle,
        env=env,
        study=study,
        restart_dead=restart_dead,
    )
    with view:
        result = supervisor.run()
    _summary(console, study, ran=result.trials_ended, ran_label="these workers ran")
    _supervised_outcome(console, study, result, n_trials=n_trials)
    hint = next_step(study, session.storage_url)
    if hint:
        console.print(escape(hint))


def _supervised_outcome(
    console: Console, study: optuna.Study, result: SupervisorResult, *, n_trials: int | None
) -> None:
    """Return when the study holds its total, or when every worker stopped normally.

    A worker stops normally at ``--timeout`` or when the sampler has nothing left to draw
    (grid), as one worker in the process would, exiting 0.

    Raises:
        ConfigError: The total was not reached and a worker exited 2 (a user error, such as
            too many failed trials in a row): its own error line, naming the worker (exit 2).
        click.exceptions.Exit: The total was not reached and workers died (exit 1).
    """
    from hpo.supervise import describe_exit

    finished = finished_count(study)
    if n_trials is not None and finished >= n_trials:
        return
    held = f"{finished} of {n_trials}" if n_trials is not None else str(finished)
    # w1, w2, ..., w10 in the order they were planned, not the order they exited.
    dead = {
        w: c
        for w, c in sorted(result.exit_codes.items(), key=lambda wc: (len(wc[0]), wc[0]))
        if c != 0
    }
    if not dead:
        reasons = ", ".join(sorted(set(result.stopped_by.values()))) or "no reason given"
        console.print(
            escape(f"the study holds {held} finished trials: the workers stopped ({reasons})"),
            highlight=False,
        )
        return
    user_errors = [w for w, c in dead.items() if c == 2]
    if user_errors:
        first, *others = user_errors
        too = f"{', '.join(others)} exited 2 too; " if others else ""
        line = result.errors.get(first, "exit 2 with no error line")
        raise ConfigError(f"{first}: {line} ({too}the study holds {held} finished trials)")
    exits = ", ".join(f"{w} {describe_exit(c)}" for w, c in dead.items())
    what = "the study did not reach its total" if n_trials is not None else "workers died"
    _log.error("error: %s (%s finished trials); workers: %s", what, held, exits)
    raise click.exceptions.Exit(1)


def _dry_run(
    name: str, *, config: Path | None, overrides: tuple[str, ...], storage: str | None
) -> None:
    from hpo.config import dump_yaml
    from hpo.tune import dry_run

    # Plain lines, never wrapped or styled: users grep and diff this output.
    checked = dry_run(name, config=config, overrides=overrides, storage=storage)
    spec, samples = checked.spec, checked.data
    study = spec.study
    lines = [
        f"study file {spec.path} is valid | study {name} | storage {checked.masked_storage} "
        "(not opened)",
        f"data: {len(samples)} images of {len(set(samples.groups))} people/groups in "
        f"{samples.num_classes} classes ({spec.base_config().data.root})",
        f"sampler {dict(study.sampler)} | pruner {dict(study.pruner)}",
        f"search space ({len(checked.space.params)} parameters; sampled value in brackets):",
    ]
    for path, param in checked.space.params.items():
        lines.append(f"  {path}: {param.describe()}  [{checked.sampled_values[path]}]")
    lines.append("one sampled trial's config (what `hpo export` would write for it):")
    click.echo("\n".join(lines))
    click.echo(dump_yaml(checked.sample.to_dict()), nl=False)
    click.echo("dry run: nothing trained, nothing written")


def _best_text(study: optuna.Study) -> str:
    """``best 0.7321 (trial 14)`` for a progress bar, or ``best -`` before a complete trial."""
    best = best_trial(study)
    return "best -" if best is None else f"best {best.value:.4f} (trial {best.number})"


def _plain(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


def _last_failure(study: optuna.Study) -> str:
    for trial in reversed(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))):
        reason = trial.user_attrs.get("fail_reason")
        if reason:
            return str(reason)
    return "unknown"


def _summary(
    console: Console, study: optuna.Study, *, ran: int, ran_label: str = "this worker ran"
) -> None:
    table = Table(
        title=f"study {escape(study.study_name)}", title_justify="left", show_header=False
    )
    table.add_row(ran_label, str(ran))
    table.add_row("trials", counts_text(study))
    best = best_trial(study)
    if best is None:
        table.add_row("best", "no complete trial yet")
    else:
        folds = best.user_attrs.get("fold_scores") or []
        table.add_row(
            "best trial",
            f"{best.number}: {best.value:.4f}"
            + (f" (folds {' '.join(f'{v:.3f}' for v in folds)})" if folds else ""),
        )
        table.add_row("best params", format_params(best.params))
    console.print(table)
