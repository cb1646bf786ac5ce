"""``hpo train``: final training from an exported config or a study file's fixed settings."""

from __future__ import annotations

import time
from pathlib import Path

import click

from hpo.cli._options import device_option, set_option
from hpo.exceptions import ConfigError

__all__ = ["train"]


def _parse_folds(value: str | None, n_splits: int) -> list[int] | None:
    """``all`` -> every fold; ``0,2`` -> [0, 2]; None -> None (the config's default)."""
    if value is None:
        return None
    if value.strip().lower() == "all":
        return list(range(n_splits))
    try:
        folds = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--folds {value!r}: expected all or fold numbers like 0,2,4") from None
    if not folds:
        raise ConfigError(f"--folds {value!r}: expected all or fold numbers like 0,2,4")
    return folds


@click.command(short_help="Final training: --full or a K-fold ensemble.")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="Training config (from `hpo export`) or a study file (its fixed settings).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory to create (default: runs/<config name>-<date>-<time>).",
)
@set_option
@device_option
@click.option("--full", is_flag=True, help="One model on all training data, no validation.")
@click.option(
    "--folds",
    default=None,
    metavar="all|K,K,...",
    help="Folds to train as an ensemble (default: the config's train.kfold.folds).",
)
@click.option("--quiet", is_flag=True, help="No per-epoch lines or progress bars.")
@click.option(
    "--tensorboard",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Write the run's TensorBoard events (per epoch and fold) into DIR/<run dir name>.",
)
@click.option(
    "--no-trackers",
    is_flag=True,
    help="Log to none of the config's trackers (its `trackers:` list; --tensorboard still works).",
)
def train(
    config_path: Path,
    out_dir: Path | None,
    overrides: tuple[str, ...],
    device: str,
    full: bool,
    folds: str | None,
    quiet: bool,
    tensorboard: Path | None,
    no_trackers: bool,
) -> None:
    """Train on all data (--full) or as a K-fold ensemble and write a run directory."""
    from rich.markup import escape

    from hpo.cli._console import make_console
    from hpo.cli._steps import StepBars
    from hpo.config import TrackerSpec, load_train_config
    from hpo.trackers import TrainTracking, require_trackers
    from hpo.train import configure_backends, resolve_device, seed_everything
    from hpo.train.loop import EpochResult
    from hpo.train.runner import resolve_folds, train_run

    if full and folds is not None:
        raise ConfigError("--full and --folds exclude each other: --full trains on all data")
    extra = []
    if tensorboard is not None:
        extra.append(TrackerSpec.model_validate({"name": "tensorboard", "dir": str(tensorboard)}))
        require_trackers(extra, where="--tensorboard")
    config = load_train_config(config_path, overrides)
    if not no_trackers:
        require_trackers(config.trackers or (), where=f"{config_path}: trackers")
    chosen = _parse_folds(folds, config.train.kfold.n_splits)
    torch_device = resolve_device(device)
    configure_backends(torch_device)
    seed_everything(config.train.seed)
    run_dir = out_dir or Path("runs") / f"{config_path.stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    console = make_console(stderr=True)
    epochs = config.train.epochs

    def on_epoch_end(part: str, r: EpochResult) -> None:
        scores = (
            ""
            if r.macro_f1 is None
            else f"  val_loss {r.val_loss:.4f}  macro-F1 {r.macro_f1:.4f}  acc {r.accuracy:.4f}"
        )
        console.print(
            f"{part:>7}  epoch {r.epoch:>{len(str(epochs))}}/{epochs}  "
            f"loss {r.train_loss:.4f}{scores}  lr {r.lr:.2e}  {r.seconds:.1f}s"
        )

    callback = None if quiet else on_epoch_end
    tracking = TrainTracking(
        config, run_dir, device=str(torch_device), extra=extra, use_config=not no_trackers
    )
    if tracking:

        def on_epoch_end_tracked(part: str, r: EpochResult) -> None:
            tracking.epoch(part, r.to_dict())
            if not quiet:
                on_epoch_end(part, r)

        callback = on_epoch_end_tracked
    if not quiet:
        what = "all data" if full else f"folds {resolve_folds(config, chosen)}"
        console.print(
            escape(
                f"training {config.train.model.name} on {config.data.root} ({what}) "
                f"on {torch_device} -> {run_dir}"
            )
        )
    bars = StepBars(console)
    report = None
    try:
        report = train_run(
            config,
            run_dir,
            device=torch_device,
            full=full,
            folds=chosen,
            progress=None if quiet else bars.callback,
            on_epoch_end=callback,
        )
    except BaseException as exc:
        if tracking:
            tracking.end(None, error=exc)
        raise
    finally:
        bars.close()
    if tracking:
        tracking.end(report)
    click.echo(f"run dir: {run_dir}")
    if report["mean_macro_f1"] is not None:
        scores = " ".join(f"{r['macro_f1']:.4f}" for r in report["results"])
        click.echo(
            f"mean macro-F1: {report['mean_macro_f1']:.4f} (folds {report['folds']}: "
            f"{scores}); mean accuracy {report['mean_accuracy']:.4f}"
        )
    else:
        click.echo(
            f"trained one model on all {report['num_samples']} images "
            f"(final training loss {report['results'][0]['train_loss']:.4f})"
        )
