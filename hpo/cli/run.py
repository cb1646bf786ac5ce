"""``hpo run``: run trials of a study, as one worker here or as supervised worker processes."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
import optuna

from hpo.cli._console import make_console
from hpo.cli._dry_run import print_dry_run
from hpo.cli._options import device_option, set_option, storage_option
from hpo.cli._signals import stop_on_signals
from hpo.exceptions import ConfigError


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
@click.option(
    "--warm-start",
    metavar="OTHER_STUDY",
    default=None,
    help="First import the finished trials of OTHER_STUDY that fit this study's search space "
    "(once per study; they count toward no --n-trials and are never the best).",
)
@click.option(
    "--warm-start-storage",
    metavar="URL",
    default=None,
    help="Storage of --warm-start's study (default: resolved as this study's storage is).",
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
    "--force-workers",
    is_flag=True,
    help="Start more worker processes than this machine has cores (refused without it).",
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
    warm_start: str | None,
    warm_start_storage: str | None,
    quiet: bool,
    dry_run: bool,
    tensorboard: Path | None,
    devices: str | None,
    workers_per_device: int | None,
    workers: int | None,
    force_workers: bool,
    restart_dead: bool,
    worker_of: int | None,
    threads: int | None,
) -> None:
    # Imported here: `hpo --help` lists this command without paying for torch.
    from hpo.cli._display import format_trial
    from hpo.cli._supervised import plan, run_supervised
    from hpo.cli._worker import run_here
    from hpo.workers import WorkerRequest, run_child

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if warm_start_storage is not None and warm_start is None:
        raise ConfigError("--warm-start-storage needs --warm-start OTHER_STUDY")
    if dry_run:
        print_dry_run(
            name,
            config=config,
            overrides=overrides,
            storage=storage,
            warm_start=warm_start,
            warm_start_storage=warm_start_storage,
        )
        return
    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials must be at least 1, got {n_trials}")
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise ConfigError(f"--timeout must be a number of seconds above 0, got {timeout:g}")
    if n_trials is None and timeout is None:
        raise ConfigError("give --n-trials N (study-wide total) or --timeout SECONDS")
    if tensorboard is not None:
        from hpo.trackers import require_tensorboard

        require_tensorboard()  # before the data is loaded
        overrides = (*overrides, f"study.tensorboard={tensorboard}")
    request = WorkerRequest(
        name,
        config=config,
        overrides=overrides,
        storage=storage,
        device=device,
        n_trials=n_trials,
        timeout=timeout,
        allow_mismatch=allow_mismatch,
        threads=threads,
        warm_start=None if worker_of is not None else warm_start,
        warm_start_storage=warm_start_storage,
    )
    plans = plan(
        devices=devices,
        workers_per_device=workers_per_device,
        workers=workers,
        force_workers=force_workers,
    )
    if plans is not None:
        console = make_console(stderr=True)
        run_supervised(request, plans, console=console, quiet=quiet, restart_dead=restart_dead)
    elif worker_of is not None:  # a supervised worker: messages on stdout, nothing else
        run_child(request, parent=worker_of, out=sys.stdout, trial_line=format_trial)
    else:
        run_here(request, console=make_console(stderr=True), quiet=quiet)
