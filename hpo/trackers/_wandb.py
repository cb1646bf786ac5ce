"""Weights & Biases: one run per trial, grouped by study (``group``), logged as it happens.

A trial's run is ``STUDY-trial-N`` with job type ``trial`` (``train`` for ``hpo train``); its
config holds every setting by dotted key, each epoch is one history row whose ``epoch`` is the
x-axis of every metric, the pictures are logged as images, and the summary holds ``state``,
``outcome`` and ``macro_f1``. W&B's code saving, git and system statistics are off: a worker
sends the run and nothing else.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from hpo.components import TRACKERS
from hpo.trackers._base import RunEnd, RunInfo, Tracker, TrackerContext, epoch_metrics

if TYPE_CHECKING:
    from wandb.sdk.wandb_run import Run

__all__ = ["WandbTracker"]

_INIT_TIMEOUT = 30.0
"""Seconds ``wandb.init`` waits for its service (W&B's default is 90)."""


class WandbTracker(Tracker):
    """Runs in a W&B project.

    Args:
        context: The study (the runs' group).
        project: The W&B project.
        entity: The team or user (default: the logged-in user's).
        mode: ``online``, or ``offline`` (written under ``dir``, ``wandb sync`` uploads later).
        dir: Where W&B keeps its files (default: W&B's, the current directory).
    """

    def __init__(
        self,
        *,
        context: TrackerContext,
        project: str,
        entity: str | None = None,
        mode: Literal["online", "offline"] = "online",
        dir: str | None = None,
    ) -> None:
        self.context = context
        self.project = project
        self.entity = entity
        self.mode = mode
        self.dir = None if dir is None else Path(dir)
        self.label = f"wandb ({project}, {mode})"
        self._run: Run | None = None

    def start(self, run: RunInfo) -> None:
        import wandb

        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            mode=self.mode,
            silent=True,
            console="off",
            save_code=False,
            disable_code=True,
            disable_git=True,
            disable_job_creation=True,
            x_disable_stats=True,
            x_disable_meta=True,
            x_disable_machine_info=True,
            init_timeout=_INIT_TIMEOUT,
        )
        tags = [f"{k}:{v}"[:64] for k, v in run.tags.items()]
        self._run = wandb.init(
            project=self.project,
            entity=self.entity,
            group=self.context.study_name,
            job_type=run.kind,
            name=run.name,
            dir=None if self.dir is None else str(self.dir),
            config=run.settings(),
            tags=tags,
            settings=settings,
            reinit="create_new",
        )
        self._run.define_metric("epoch")
        self._run.define_metric("*", step_metric="epoch")

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        assert self._run is not None
        self._run.log({"epoch": int(result["epoch"]), **epoch_metrics(part, result)})

    def end(self, outcome: RunEnd) -> None:
        import wandb

        run, self._run = self._run, None
        assert run is not None
        try:
            images = {
                f"pictures/{path.stem}": wandb.Image(str(path))
                for path in outcome.pictures
                if path.suffix == ".png"
            }
            if images:
                run.log(images)
            for path in outcome.pictures:
                if path.suffix != ".png":
                    # A file in the run's folder is part of the run (``wandb.save`` would
                    # symlink it and print a warning per trial).
                    shutil.copyfile(path, Path(run.dir) / path.name)
            run.summary["state"] = outcome.state
            run.summary["outcome"] = outcome.outcome
            if outcome.value is not None:
                run.summary["macro_f1"] = float(outcome.value)
        finally:
            run.finish(exit_code=1 if outcome.state == "FAIL" else 0)

    def abandon(self) -> None:
        run, self._run = self._run, None
        if run is not None:
            run.finish(exit_code=1)


@TRACKERS.register("wandb")
def _wandb(
    *,
    context: TrackerContext,
    project: str,
    entity: str | None = None,
    mode: Literal["online", "offline"] = "online",
    dir: str | None = None,
) -> Tracker:
    return WandbTracker(context=context, project=project, entity=entity, mode=mode, dir=dir)
