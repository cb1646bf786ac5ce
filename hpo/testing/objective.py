"""The objective of a tiny study file, for tests that run real trials with ``study.ask()``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.testing.studies import tiny_study

if TYPE_CHECKING:
    from hpo.config import DataConfig
    from hpo.objective import Objective

__all__ = ["tiny_objective"]


def tiny_objective(
    folder: Path,
    data_root: Path,
    *,
    search_space: Mapping[str, Any],
    epochs: int = 1,
    folds: int = 1,
    per_fold_pruning: bool = False,
    data_loader: Callable[[DataConfig], Any] | None = None,
) -> Objective:
    """The CPU objective of ``tiny_study(data_root, ...)``, its study file written in ``folder``.

    Args:
        folder: Where ``tiny.yaml`` is written.
        data_root: A demo data set (``hpo.data.make_demo_data``).
        search_space: The ``search_space`` section.
        epochs: ``train.epochs``.
        folds: Folds of 3 each trial trains.
        per_fold_pruning: Report once per fold (the Wilcoxon pruner's unit).
        data_loader: Replaces ``hpo.data.load_training_data``.
    """
    import torch

    from hpo.objective import Objective
    from hpo.space import parse_space
    from hpo.study import load_study_spec

    path = folder / "tiny.yaml"
    path.write_text(
        tiny_study(data_root, study={}, search_space=search_space, epochs=epochs, folds=folds)
    )
    spec = load_study_spec(path)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    return Objective(
        spec,
        space,
        device=torch.device("cpu"),
        per_fold_pruning=per_fold_pruning,
        data_loader=data_loader,
    )
