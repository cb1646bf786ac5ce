"""``hpo ensemble``: choose runs and weights on out-of-fold predictions, write the file."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

__all__ = ["ensemble"]


@click.command(short_help="Choose an ensemble of runs on their out-of-fold predictions.")
@click.option(
    "--run",
    "run_dirs",
    required=True,
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory of `hpo train --folds all` (repeat: the candidates).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("ensemble.yaml"),
    show_default=True,
    help="Ensemble file for `hpo predict --ensemble`.",
)
@click.option(
    "--size",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="Selection steps (with replacement): the most runs, counted with repeats.",
)
@click.option(
    "--thresholds",
    is_flag=True,
    help="Also tune per-class decision weights on the same out-of-fold probabilities "
    "(reported separately; `hpo predict --ensemble` then applies them).",
)
def ensemble(run_dirs: tuple[Path, ...], out: Path, size: int, thresholds: bool) -> None:
    """Greedy forward selection with replacement (Caruana et al. 2004) maximizing the
    out-of-fold macro-F1 of the averaged probabilities; writes each run's weight."""
    from hpo.ensemble import select_ensemble, write_ensemble
    from hpo.train.runner import CONFIG_FILE

    chosen, selection = select_ensemble(list(run_dirs), size=size, thresholds=thresholds)
    names = [str(r) for r in run_dirs]
    # Each run alone, best first: on small data a study's best trial is partly luck (one fold's
    # validation images), and this ranks the configs on every training image.
    ranked = sorted(range(len(names)), key=lambda k: (-selection.alone[k], k))
    for k in ranked:
        click.echo(f"alone: {names[k]}  out-of-fold macro-F1 {selection.alone[k]:.4f}")
    width = len(str(size))
    for step, (pick, score) in enumerate(selection.steps, start=1):
        mark = "" if step <= selection.kept else "  (not kept)"
        click.echo(
            f"step {step:>{width}}: + {names[pick]}  out-of-fold macro-F1 {score:.4f}{mark}"
        )
    for run, weight in zip(chosen.runs, chosen.weights, strict=True):
        click.echo(f"  {weight:.3f}  {run}")
    if chosen.class_weights is not None:
        weights = " ".join(f"{w:.2f}" for w in chosen.class_weights)
        click.echo(
            f"class weights: {weights}; out-of-fold macro-F1 {chosen.weighted_score:.4f} with "
            f"them, {selection.score:.4f} without (optimistic: tuned on the same rows)"
        )
    write_ensemble(chosen, out, size=size)
    click.echo(
        f"wrote {out}: {len(chosen.runs)} of {len(run_dirs)} run(s), {selection.kept} step(s), "
        f"out-of-fold macro-F1 {selection.score:.4f}"
    )
    best = shlex.quote(str(run_dirs[ranked[0]] / CONFIG_FILE))
    click.echo(
        f"next: hpo predict --ensemble {shlex.quote(str(out))} --data DIR, or the best run alone "
        f"on all data: hpo train --config {best} --full"
    )
