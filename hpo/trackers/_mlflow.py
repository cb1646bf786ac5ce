"""MLflow: one run per trial, nested under one parent run per study, logged as it happens.

Runs go to the experiment named in the tracker's settings, by default the study's name. The
study's parent run is found or created once (by the first worker, or the supervisor before its
workers start) and its id kept on the study (``hpo.study.record_tracker_parent``); each trial's
run carries ``mlflow.parentRunId``. Two workers that start at the same moment on a study with no
parent yet may both create one: each re-reads the study right before writing its own and adopts
(and deletes its own for) one already written; only two writes in the same instant leave two
parents, each holding the trials of the workers that wrote it.

MLflow's HTTP client retries for minutes by default; hpo lowers its retries and timeout (unless
the environment sets them) so a tracking server that went away costs a trial seconds.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpo.components import TRACKERS
from hpo.study import mask_url, read_study_record, record_tracker_parent
from hpo.trackers._base import RunEnd, RunInfo, Tracker, TrackerContext, epoch_metrics

if TYPE_CHECKING:
    import optuna
    from mlflow import MlflowClient

__all__ = ["HTTP_DEFAULTS", "MlflowTracker", "mlflow_client", "param_key", "sqlite_path"]

HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}
"""Set (unless already set) before MLflow is imported: a dead server costs ~20 s, not minutes."""

_STATUS = {"COMPLETE": "FINISHED", "PRUNED": "FINISHED", "FAIL": "FAILED", "STOPPED": "KILLED"}


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client of ``tracking_uri`` with hpo's HTTP defaults."""
    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def sqlite_path(tracking_uri: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` tracking URI; None for any other."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


def param_key(name: str) -> str:
    """A setting's name as MLflow accepts it: a conditional parameter's branch
    (``train.loss[focal].gamma``) becomes a dotted part (``train.loss.focal.gamma``), any other
    character MLflow refuses an underscore."""
    dotted = re.sub(r"\[([^\]]*)\]", r".\1", name)
    return re.sub(r"[^\w./\- :]", "_", dotted)


class MlflowTracker(Tracker):
    """Runs in an MLflow tracking store (a server, or a local ``sqlite:///`` file).

    Args:
        context: The study (its name is the default experiment; it keeps the parent run's id).
        tracking_uri: The tracking store.
        experiment: The experiment's name (default: the study's name, else ``hpo``).
        artifact_location: Where a new experiment keeps its files (default: the server's, or
            ``mlartifacts/`` beside a SQLite store's file).
    """

    def __init__(
        self,
        *,
        context: TrackerContext,
        tracking_uri: str,
        experiment: str | None = None,
        artifact_location: str | None = None,
    ) -> None:
        self.context = context
        self.tracking_uri = tracking_uri
        self.experiment = experiment or context.study_name or "hpo"
        self.artifact_location = artifact_location
        self._shown_uri = mask_url(tracking_uri) if "//" in tracking_uri else tracking_uri
        self.label = f"mlflow ({self._shown_uri})"
        self._client: MlflowClient | None = None
        self._experiment_id: str | None = None
        self._run_id: str | None = None

    def scrub(self, text: str) -> str:
        """A password or token in the tracking URI never reaches a log line."""
        return text.replace(self.tracking_uri, self._shown_uri)

    @property
    def client(self) -> MlflowClient:
        if self._client is None:
            self._client = mlflow_client(self.tracking_uri)
        return self._client

    def experiment_id(self) -> str:
        """The experiment's id, creating it (and a SQLite store's tables) if need be."""
        if self._experiment_id is not None:
            return self._experiment_id
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            location = self.artifact_location
            database = sqlite_path(self.tracking_uri)
            if location is None and database is not None:
                location = (database.absolute().parent / "mlartifacts").as_uri()
            try:
                self._experiment_id = self.client.create_experiment(
                    self.experiment, artifact_location=location
                )
            except MlflowException:  # another worker created it first
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found is not None:
            self._experiment_id = str(found.experiment_id)
        assert self._experiment_id is not None
        return self._experiment_id

    def _parent_key(self) -> str:
        return f"mlflow|{self.tracking_uri}|{self.experiment_id()}"

    def _usable(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            run = self.client.get_run(run_id)
        except Exception:  # deleted store, another server: make a new parent
            return False
        return run.info.lifecycle_stage == "active"

    def parent_run(self, study: optuna.Study) -> str:
        """The id of the study's parent run, found on the study or created (see the module)."""
        key = self._parent_key()
        known = read_study_record(study).tracker_parents.get(key)
        if self._usable(known):
            assert known is not None
            return known
        run = self.client.create_run(
            self.experiment_id(),
            run_name=study.study_name,
            tags={"hpo.study": study.study_name, "hpo.job": "study"},
        )
        mine = run.info.run_id
        self.client.set_terminated(mine, "FINISHED")  # a folder of trials, never left running
        again = read_study_record(study).tracker_parents.get(key)  # right before writing
        if again and again != known and self._usable(again):
            self.client.delete_run(mine)
            return again
        record_tracker_parent(study, key, mine)
        return mine

    def prepare_study(self, study: optuna.Study) -> None:
        self.parent_run(study)

    def start(self, run: RunInfo) -> None:
        from mlflow.entities import Param

        tags = {f"hpo.{k}": v for k, v in run.tags.items()}
        tags["hpo.job"] = run.kind
        if self.context.study_name is not None:
            tags["hpo.study"] = self.context.study_name
        if run.trial is not None:
            tags["hpo.trial"] = str(run.trial)
        if self.context.study is not None and run.kind == "trial":
            tags["mlflow.parentRunId"] = self.parent_run(self.context.study)
        if run.params:
            tags["hpo.sampled"] = ", ".join(sorted(param_key(k) for k in run.params))
        created = self.client.create_run(self.experiment_id(), run_name=run.name, tags=tags)
        self._run_id = created.info.run_id
        settings = {param_key(k): _text(v)[:6000] for k, v in run.settings().items()}
        params = [Param(k, v) for k, v in sorted(settings.items())]
        for i in range(0, len(params), 100):  # MLflow takes 100 params per batch
            self.client.log_batch(self._run_id, params=params[i : i + 100], synchronous=True)

    def epoch(self, part: str, result: Mapping[str, Any]) -> None:
        from mlflow.entities import Metric

        assert self._run_id is not None
        now, step = int(time.time() * 1000), int(result["epoch"])
        metrics = [Metric(k, v, now, step) for k, v in epoch_metrics(part, result).items()]
        self.client.log_batch(self._run_id, metrics=metrics, synchronous=True)

    def end(self, outcome: RunEnd) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self._run_id
        assert run_id is not None
        metrics = []
        if outcome.value is not None:
            metrics.append(Metric("macro_f1", float(outcome.value), int(time.time() * 1000), 0))
        tags = [RunTag("hpo.state", outcome.state), RunTag("hpo.outcome", outcome.outcome)]
        if outcome.detail:
            tags.append(RunTag("hpo.detail", outcome.detail[:5000]))
        self.client.log_batch(run_id, metrics=metrics, tags=tags, synchronous=True)
        for path in outcome.pictures:
            self.client.log_artifact(run_id, str(path), artifact_path="pictures")
        self.client.set_terminated(run_id, _STATUS[outcome.state])
        self._run_id = None

    def abandon(self) -> None:
        run_id, self._run_id = self._run_id, None
        if run_id is not None:
            self.client.set_terminated(run_id, "FAILED")


@TRACKERS.register("mlflow")
def _mlflow(
    *,
    context: TrackerContext,
    tracking_uri: str,
    experiment: str | None = None,
    artifact_location: str | None = None,
) -> Tracker:
    return MlflowTracker(
        context=context,
        tracking_uri=tracking_uri,
        experiment=experiment,
        artifact_location=artifact_location,
    )
