"""``hpo predict``: write the submission of trained runs (one, a fold ensemble, several)."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli._options import device_option
from hpo.exceptions import ConfigError

__all__ = ["predict"]


def _parse_weights(value: str | None) -> list[float] | None:
    if value is None:
        return None
    try:
        return [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--weights {value!r}: expected numbers like 0.6,0.4") from None


@click.command(short_help="Predict eval images: the submission.")
@click.option(
    "--run",
    "run_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory written by `hpo train` (repeat to average several runs).",
)
@click.option(
    "--weights",
    default=None,
    metavar="W,W,...",
    help="One weight per --run, in order (default: equal weights).",
)
@click.option(
    "--ensemble",
    "ensemble_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Ensemble file written by `hpo ensemble` (runs and weights), instead of --run.",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Eval data: DATA/eval (info.csv + images/) or DATA; for folder runs a folder of images.",
)
@click.option(
    "--tta",
    default=None,
    is_flag=False,
    flag_value="all",
    metavar="[VIEWS]",
    help="Test-time augmentation: alone, every view the run trained for (hflip only if it "
    "trained with flips, scale only with random crops); or named views, e.g. --tta hflip,scale.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("submission.csv"),
    show_default=True,
    help="Submission file (info.csv with ans filled; path,pred,class_name for image folders).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Inputs per forward pass, TTA views included.",
)
@device_option
def predict(
    run_dirs: tuple[Path, ...],
    weights: str | None,
    ensemble_file: Path | None,
    data: Path,
    tta: str | None,
    out: Path,
    batch_size: int,
    device: str,
) -> None:
    """Predict the eval images and write the submission file."""
    import logging

    from hpo.cli._console import make_console
    from hpo.cli._steps import StepBars
    from hpo.predict import predict_runs, write_predictions
    from hpo.train.device import configure_backends, resolve_device

    runs: list[Path] = list(run_dirs)
    shares = _parse_weights(weights)
    class_weights = None
    if ensemble_file is not None:
        if runs or shares is not None:
            raise ConfigError(
                "--ensemble names its runs and weights: leave out --run and --weights"
            )
        from hpo.ensemble import load_ensemble

        chosen = load_ensemble(ensemble_file)
        runs, shares, class_weights = chosen.runs, chosen.weights, chosen.class_weights
    elif not runs:
        raise ConfigError("name a run (--run RUN_DIR, repeatable) or an --ensemble file")
    torch_device = resolve_device(device)
    configure_backends(torch_device)
    bars = StepBars(make_console(stderr=True))
    try:
        pred = predict_runs(
            runs,
            data,
            device=torch_device,
            weights=shares,
            tta=tta,
            batch_size=batch_size,
            progress=bars.callback,
            class_weights=class_weights,
        )
    finally:
        bars.close()
    log = logging.getLogger("hpo")
    for path, reason in pred.bad[:5]:
        log.warning("could not decode %s (%s): predicted the most frequent class", path, reason)
    if len(pred.bad) > 5:
        log.warning("... and %d more images that could not be decoded", len(pred.bad) - 5)
    write_predictions(pred, out)
    counts = [int((pred.labels == k).sum()) for k in range(len(pred.class_names))]
    if len(pred.runs) > 1:
        what = ", ".join(f"{r} x{w:.3f}" for r, w in zip(pred.runs, pred.weights, strict=True))
        click.echo(f"averaged {len(pred.runs)} runs: {what}")
    if class_weights is not None:
        click.echo(f"applied the class weights of {ensemble_file} (hpo ensemble --thresholds)")
    views = sorted({v for vs in pred.views for v in vs})
    tta_text = f", TTA ({', '.join(views)})" if views else ""
    if tta is not None and not views:
        tta_text = ", no TTA view is safe for the run(s)"
    click.echo(
        f"wrote {out}: {len(pred.labels)} rows, {pred.n_models} model(s) ({pred.mode})"
        f"{tta_text}; predictions per class: {counts}"
    )
