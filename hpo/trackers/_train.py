"""The tracker run of one ``hpo train``: its settings, each epoch as it ends, its pictures."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hpo.config import TrackerSpec, TrainConfig
from hpo.study import WorkerInfo
from hpo.trackers._base import RunEnd, RunInfo, TrackerContext, flat_settings
from hpo.trackers._open import open_trackers
from hpo.trackers._set import TrackerSet

__all__ = ["TrainTracking"]


class TrainTracking:
    """One ``hpo train`` as one run in each tracker (job type / ``hpo.job`` ``train``).

    Args:
        config: The training config; its ``trackers`` are used unless ``use_config`` is False.
        run_dir: The run directory (its name is the run's name).
        device: Where it trains.
        extra: More trackers (``hpo train --tensorboard DIR``).
        use_config: Log to the config's own trackers (``--no-trackers``: False).
    """

    def __init__(
        self,
        config: TrainConfig,
        run_dir: Path,
        *,
        device: str,
        extra: Sequence[TrackerSpec] = (),
        use_config: bool = True,
    ) -> None:
        self.specs = [*((config.trackers or ()) if use_config else ()), *extra]
        provenance = config.provenance or {}
        study = provenance.get("study")
        self.trackers: TrackerSet = open_trackers(
            self.specs, TrackerContext(study_name=None if study is None else str(study))
        )
        worker = WorkerInfo.this_process(device).to_json()
        tags = {k: str(v) for k, v in worker.items()}
        if study is not None:
            tags |= {"study": str(study), "from_trial": str(provenance.get("trial"))}
        settings = config.to_dict()
        settings.pop("provenance", None)
        settings.pop("trackers", None)
        self.run = RunInfo(
            kind="train",
            name=Path(run_dir).name,
            params=dict(provenance.get("params") or {}),
            config=flat_settings(settings),
            tags=tags,
        )
        self._history: dict[str, list[dict[str, Any]]] = {}

    def __bool__(self) -> bool:
        return bool(self.trackers)

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        """One epoch (``EpochResult.to_dict()``) of ``part`` (``fold_0``, ``full``); the first
        starts the run (a config or data error before it leaves no run behind)."""
        if not self.trackers.running:
            self.trackers.start(self.run)
        self._history.setdefault(part, []).append(dict(result))
        self.trackers.epoch(part, result)

    def end(self, report: Mapping[str, Any] | None, error: BaseException | None = None) -> None:
        """End the run: complete with ``report`` (``metrics.json``), or failed / stopped.

        A run that never reached its first epoch was never started and is left alone.
        """
        if not self.trackers.running:
            return
        if error is not None:
            stopped = isinstance(error, KeyboardInterrupt)
            reason = getattr(error, "reason", None) or f"{type(error).__name__}: {error}"
            self.trackers.end(RunEnd(state="STOPPED" if stopped else "FAIL", detail=reason))
            return
        assert report is not None
        value = report.get("mean_macro_f1")
        with tempfile.TemporaryDirectory(prefix="hpo-train-pictures-") as tmp:
            pictures = self._pictures(report, Path(tmp))
            self.trackers.end(
                RunEnd(
                    state="COMPLETE",
                    value=None if value is None else float(value),
                    pictures=pictures,
                )
            )

    def _pictures(self, report: Mapping[str, Any], folder: Path) -> list[Path]:
        from hpo.plots import confusion_figure, learning_curves_figure, save_png

        name = self.run.name
        files = []
        if self._history:
            fig = learning_curves_figure(list(self._history.values()), title=f"{name}")
            files.append(save_png(fig, folder / "learning_curves.png"))
        matrices = [r["confusion"] for r in report.get("results", []) if r.get("confusion")]
        if matrices:
            total = np.sum([np.asarray(m) for m in matrices], axis=0).tolist()
            names = list(report.get("class_names") or [str(k) for k in range(len(total))])
            title = f"{name}: validation confusion matrix"
            fig = confusion_figure(total, names, title=title)
            files.append(save_png(fig, folder / "confusion_matrix.png"))
        return files
