"""MLflow runs of trials and of ``hpo train``, read back from a local SQLite tracking store
with MLflow's own client."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo.testing import free_port
from hpo.testing.studies import tiny_study, write_tiny_study
from tests.trackers.checks import check_mlflow_trials

pytest.importorskip("mlflow")


CliRun = Callable[..., tuple[int, str, str]]


def _study(tmp_path: Path, demo_data: Path, tracker: dict[str, Any]) -> Path:
    return write_tiny_study(tmp_path, demo_data, epochs=2, trackers=[tracker])


def _conditional_study(tmp_path: Path, demo_data: Path, tracker: dict[str, Any]) -> Path:
    """A study whose trials sample a conditional parameter (``train.loss[focal].gamma``)."""
    path = tmp_path / "tiny.yaml"
    settings: dict[str, Any] = {
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "trackers": [tracker],
    }
    space = {
        "train.optimizer.lr": {"float": [1.0e-3, 1.0e-1], "log": True},
        "train.loss": {"choice": {"focal": {"gamma": {"float": [0.5, 2.0]}}, "f1": {}}},
    }
    path.write_text(tiny_study(demo_data, study=settings, search_space=space, epochs=2))
    return path


def test_every_trial_is_a_child_run_with_its_curves_state_and_pictures(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    path = _conditional_study(tmp_path, demo_data, {"name": "mlflow", "tracking_uri": uri})
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", path, "--n-trials", "2", "--quiet"
    )
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    check_mlflow_trials(uri, study, epochs=2)
    assert any("train.loss[focal].gamma" in t.params for t in study.trials)
    # Artifacts lie beside the SQLite file, not in the current directory.
    assert (tmp_path / "mlflow" / "mlartifacts").is_dir()

    # A second run of the study adopts the same parent run.
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", path, "--n-trials", "3", "--quiet"
    )
    assert code == 0, err
    check_mlflow_trials(uri, study, epochs=2)


def test_a_dead_server_costs_no_trial_and_the_log_says_what_was_lost(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    uri = f"http://hpo:s3cret@127.0.0.1:{port}"  # a password in the URI never reaches a log
    shown = f"http://hpo:***@127.0.0.1:{port}"
    path = _study(tmp_path, demo_data, {"name": "mlflow", "tracking_uri": uri})
    with caplog.at_level(logging.WARNING, logger="hpo"):
        code, _, err = run_cli(
            "run", "--study", "tiny", "--config", path, "--n-trials", "2", "--quiet"
        )
    assert code == 0, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    assert [t.state.name for t in study.trials] == ["COMPLETE", "COMPLETE"]
    lost = [r.getMessage() for r in caplog.records if "not recorded there" in r.getMessage()]
    # One warning per trial (not one per epoch), naming the trial, the tracker and what.
    assert len(lost) == 2, lost
    for number, line in enumerate(lost):
        assert line.startswith(f"trial {number}: mlflow ({shown}) failed (")
        assert line.endswith("not recorded there: the whole run")
    assert "s3cret" not in err + "".join(r.getMessage() for r in caplog.records)
