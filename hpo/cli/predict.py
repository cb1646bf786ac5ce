"""``hpo predict``: write the submission of a trained run (one model or a fold ensemble)."""

from __future__ import annotations

from pathlib import Path

import click

from hpo.cli._options import device_option

__all__ = ["predict"]


@click.command(short_help="Predict eval images: the submission.")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory written by `hpo train`.",
)
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Eval data: DATA/eval (info.csv + images/) or DATA; for folder runs a folder of images.",
)
@click.option("--tta", is_flag=True, help="Also average over horizontally flipped images.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("submission.csv"),
    show_default=True,
    help="Submission file (info.csv with ans filled; path,pred,class_name for image folders).",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@device_option
def predict(run_dir: Path, data: Path, tta: bool, out: Path, batch_size: int, device: str) -> None:
    """Predict the eval images and write the submission file."""
    import logging

    from hpo.predict import predict_run, write_predictions
    from hpo.train.device import configure_backends, resolve_device

    torch_device = resolve_device(device)
    configure_backends(torch_device)
    pred = predict_run(
        run_dir, data, device=torch_device, tta=tta, batch_size=batch_size, progress=True
    )
    log = logging.getLogger("hpo")
    for path, reason in pred.bad[:5]:
        log.warning("could not decode %s (%s): predicted the most frequent class", path, reason)
    if len(pred.bad) > 5:
        log.warning("... and %d more images that could not be decoded", len(pred.bad) - 5)
    write_predictions(pred, out)
    counts = [int((pred.labels == k).sum()) for k in range(len(pred.class_names))]
    click.echo(
        f"wrote {out}: {len(pred.labels)} rows, {pred.n_models} model(s) ({pred.mode})"
        f"{', TTA' if pred.tta else ''}; predictions per class: {counts}"
    )
