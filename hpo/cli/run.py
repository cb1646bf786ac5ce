"""``hpo run``: run trials of a study as one worker of the shared study."""

from __future__ import annotations

import logging
from pathlib import Path

import click
import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hpo.cli._display import format_params, format_trial
from hpo.cli._options import device_option, set_option, storage_option
from hpo.exceptions import ConfigError
from hpo.study import finished_count, state_counts

_log = logging.getLogger("hpo")


@click.command()
@click.option("--study", "name", required=True, help="Study name: reads studies/NAME.yaml.")
@click.option(
    "--config", type=click.Path(path_type=Path), help="Study file other than studies/NAME.yaml."
)
@click.option(
    "--n-trials",
    type=int,
    default=None,
    help="Study-wide total of finished (complete + pruned) trials over all workers.",
)
@click.option(
    "--timeout", type=float, default=None, help="Start no new trial after this many seconds."
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
def run(
    name: str,
    config: Path | None,
    n_trials: int | None,
    timeout: float | None,
    storage: str | None,
    device: str,
    overrides: tuple[str, ...],
    allow_mismatch: bool,
    quiet: bool,
    dry_run: bool,
) -> None:
    """Run trials of study NAME until it holds --n-trials finished trials."""
    from hpo.train import resolve_device
    from hpo.tune import prepare_session

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if dry_run:
        _dry_run(name, config=config, overrides=overrides, storage=storage)
        return

    if n_trials is not None and n_trials < 1:
        raise ConfigError(f"--n-trials must be at least 1, got {n_trials}")
    if n_trials is None and timeout is None:
        raise ConfigError("give --n-trials N (study-wide total) or --timeout SECONDS")
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    console = Console(stderr=True, quiet=False)
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
        f"study [bold]{name}[/] | storage {escape(session.masked_storage)} | device "
        f"{torch_device} | {len(session.space.params)} parameters searched",
        highlight=False,
    )

    def best_text() -> str:
        try:
            return f"best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            return "best -"

    def finished() -> int:
        return finished_count(study)

    if quiet:

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


def _plain(text: str) -> str:
    from rich.text import Text

    return Text.from_markup(text).plain


def _last_failure(study: optuna.Study) -> str:
    for trial in reversed(study.get_trials(deepcopy=False, states=(TrialState.FAIL,))):
        reason = trial.user_attrs.get("fail_reason")
        if reason:
            return str(reason)
    return "unknown"


def _summary(console: Console, study: optuna.Study, *, ran: int) -> None:
    counts = state_counts(study)
    table = Table(title=f"study {study.study_name}", title_justify="left", show_header=False)
    table.add_row("this worker ran", str(ran))
    table.add_row("trials", ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    try:
        best = study.best_trial
    except ValueError:
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
