"""The experiment trackers' settings and facts, declared without their libraries (built by
``hpo.trackers``)."""

from __future__ import annotations

from typing import Literal

from hpo.components import TRACKERS, TrackerInfo


@TRACKERS.declare("tensorboard", info=TrackerInfo(package="tensorboard", extra="tensorboard"))
def tensorboard(*, dir: str) -> None:
    """TensorBoard event files: one run per trial in ``dir/trial_NNNN``."""


@TRACKERS.declare("mlflow", info=TrackerInfo(package="mlflow", extra="mlflow"))
def mlflow(
    *, tracking_uri: str, experiment: str | None = None, artifact_location: str | None = None
) -> None:
    """MLflow: one run per trial, nested under one parent run per study, in ``experiment``
    (default: the study's name). ``artifact_location`` is where a new experiment keeps its
    files (default: the server's, or ``mlartifacts/`` beside a SQLite store's file)."""


@TRACKERS.declare("wandb", info=TrackerInfo(package="wandb", extra="wandb"))
def wandb(
    *,
    project: str,
    entity: str | None = None,
    mode: Literal["online", "offline"] = "online",
    dir: str | None = None,
) -> None:
    """Weights & Biases: one run per trial in ``project``, grouped by study."""
