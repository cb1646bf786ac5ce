"""W&B runs of trials, in offline mode, read back from the runs' own record files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from hpo.testing.studies import write_tiny_study
from hpo.testing.trackers import read_wandb_runs, wandb_offline_env
from tests.trackers.checks import check_wandb_trials

pytest.importorskip("wandb")

CliRun = Callable[..., tuple[int, str, str]]


def test_every_trial_is_a_run_of_the_study_group(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in wandb_offline_env(tmp_path / "wandb-home").items():
        monkeypatch.setenv(key, value)
    tracker = {
        "name": "wandb",
        "project": "hpo-test",
        "mode": "offline",
        "dir": str(tmp_path / "wb"),
    }
    path = write_tiny_study(tmp_path, demo_data, epochs=2, trackers=[tracker])
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", path, "--n-trials", "2", "--quiet"
    )
    assert code == 0, err
    assert "wandb:" not in err  # W&B's own chatter stays out of hpo's output
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    check_wandb_trials(read_wandb_runs(tmp_path / "wb"), study)
