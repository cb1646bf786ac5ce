"""Several trackers as one, none of which can fail a trial."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hpo.trackers._base import RunEnd, RunInfo, Tracker

if TYPE_CHECKING:
    import optuna

__all__ = ["TrackerSet"]

_log = logging.getLogger("hpo.trackers")


class TrackerSet:
    """The trackers of a study (or of ``hpo train``), called together.

    Every call to every tracker is caught: a tracker that raises (server away, disk full) gets
    one warning naming the run, the tracker and what was not recorded, one attempt to close its
    run (``Tracker.abandon``: a run left open would read as still training), and is not called
    again until the next run starts, so a dead server costs a run a timeout or two, not one per
    epoch.

    Args:
        trackers: The trackers.
        logger: Where the warnings go.
    """

    def __init__(self, trackers: Sequence[Tracker], *, logger: logging.Logger = _log) -> None:
        self.trackers = list(trackers)
        self._log = logger
        self._live: list[bool] = [False] * len(self.trackers)
        self._run: RunInfo | None = None

    def __bool__(self) -> bool:
        return bool(self.trackers)

    @property
    def running(self) -> bool:
        """A run was started and has not ended."""
        return self._run is not None

    def prepare_study(self, study: optuna.Study) -> None:
        """Let each tracker create what the study's workers share; warn on failure."""
        for tracker in self.trackers:
            try:
                tracker.prepare_study(study)
            except Exception as exc:
                self._log.warning(
                    "study %s: %s could not be prepared (%s: %s); each trial tries again",
                    study.study_name,
                    tracker.label,
                    type(exc).__name__,
                    tracker.scrub(_one_line(exc)),
                )

    def start(self, run: RunInfo) -> None:
        """Start ``run`` in every tracker (ending one still open first)."""
        if self._run is not None:
            self.end(RunEnd(state="STOPPED", detail="a new run started before it ended"))
        self._run = run
        self._live = [True] * len(self.trackers)
        self._call("start", "the whole run", run)

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        """One epoch of ``part`` in every tracker still working for this run."""
        if self._run is not None:
            what = f"epoch {result.get('epoch')} of {part} and the rest of the run"
            self._call("epoch", what, part, result)

    def end(self, outcome: RunEnd) -> None:
        """End the run in every tracker still working for it."""
        if self._run is None:
            return
        pictures = f", {len(outcome.pictures)} pictures" if outcome.pictures else ""
        self._call("end", f"the outcome ({outcome.state}{pictures})", outcome)
        self._run = None

    def _call(self, method: str, what: str, *args: Any) -> None:
        for i, tracker in enumerate(self.trackers):
            if not self._live[i]:
                continue
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:
                self._live[i] = False
                run = self._run
                name = "run" if run is None else run.name
                if run is not None and run.trial is not None:
                    name = f"trial {run.trial}"
                self._log.warning(
                    "%s: %s failed (%s: %s); not recorded there: %s",
                    name,
                    tracker.label,
                    type(exc).__name__,
                    tracker.scrub(_one_line(exc)),
                    what,
                )
                try:
                    tracker.abandon()
                except Exception as again:
                    self._log.debug("%s: %s not closed: %s", name, tracker.label, again)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."
