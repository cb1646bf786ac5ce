"""``hpo run --dry-run`` prints YAML throughout: no Python reprs beside the config."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from hpo.testing.studies import tiny_study

CliRun = Callable[..., tuple[int, str, str]]


def test_the_dry_run_prints_settings_and_sampled_values_as_yaml(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = tmp_path / "tiny.yaml"
    focal = {"gamma": {"float": [0.5, 2.0]}}
    space = {
        "train.loss": {"choice": {"focal": focal}},  # one branch: the sample is known
        "train.batch_size": {"choice": [16]},
    }
    study = {"sampler": {"name": "random", "seed": 3}, "pruner": {"name": "none"}}
    study_file.write_text(tiny_study(demo_data, study=study, search_space=space))
    code, out, err = run_cli("run", "--study", "tiny", "--config", study_file, "--dry-run")
    assert code == 0, err
    assert "{'" not in out and "':" not in out  # no dict reprs
    lines = out.splitlines()
    sampler = next(line for line in lines if line.startswith("sampler: "))
    assert sampler == "sampler: {name: random, seed: 3} | pruner: {name: none}"
    # Each searched key, its range, and the value the config below was built from, as YAML.
    loss = next(line for line in lines if line.startswith("  train.loss: "))
    sampled = yaml.safe_load(loss.split("  -> ", 1)[1])
    assert sampled["name"] == "focal" and 0.5 <= sampled["gamma"] <= 2.0
    size = next(line for line in lines if line.startswith("  train.batch_size: "))
    assert size.endswith("  -> 16")
    config = yaml.safe_load(out.split("would write for it):\n", 1)[1].rsplit("dry run:", 1)[0])
    assert config["train"]["loss"] == {**config["train"]["loss"], **sampled}


@pytest.mark.parametrize(
    ("sampler", "pruner", "warned"),
    [
        ({"name": "gp", "n_startup_trials": 6}, {"name": "successive_halving"}, "until 6 trials"),
        ({"name": "cmaes"}, {"name": "median"}, "until 1 trials"),
        ({"name": "gp"}, {"name": "none"}, None),  # every trial completes: it learns
        ({"name": "tpe"}, {"name": "successive_halving"}, None),  # TPE learns from pruned ones
    ],
)
def test_a_sampler_that_ignores_pruned_trials_under_a_pruner_is_warned_of(
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    sampler: dict[str, object],
    pruner: dict[str, object],
    warned: str | None,
) -> None:
    study_file = tmp_path / "tiny.yaml"
    study = {"sampler": sampler, "pruner": pruner}
    space = {"train.optimizer.lr": {"float": [1.0e-3, 1.0e-2], "log": True}}
    study_file.write_text(tiny_study(demo_data, study=study, search_space=space))
    code, _, err = run_cli("run", "--study", "tiny", "--config", study_file, "--dry-run")
    assert code == 0, err
    warnings = [line for line in err.splitlines() if "learns from complete trials only" in line]
    if warned is None:
        assert warnings == []
        return
    [line] = warnings
    assert line.startswith(f"warning: {study_file}: study.sampler {sampler['name']} ")
    assert f"the {pruner['name']} pruner" in line and warned in line
    assert "Use tpe" in line and "{name: none}" in line


def _gp_study(tmp_path: Path, demo_data: Path) -> Path:
    study_file = tmp_path / "tiny.yaml"
    study = {"sampler": {"name": "gp", "seed": 0}, "pruner": {"name": "median"}}
    space = {"train.optimizer.lr": {"float": [1.0e-3, 1.0e-2], "log": True}}
    study_file.write_text(tiny_study(demo_data, study=study, search_space=space, epochs=1))
    return study_file


def test_the_run_itself_warns_once_before_its_trials(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, caplog: pytest.LogCaptureFixture
) -> None:
    study_file = _gp_study(tmp_path, demo_data)
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    with caplog.at_level(logging.WARNING, logger="hpo.tune"):
        code, _, err = run_cli(
            "run", "--study", "tiny", "--config", study_file, "--storage", storage,
            "--n-trials", "1", "--quiet",
        )  # fmt: skip
    assert code == 0, err
    warned = [r.getMessage() for r in caplog.records if r.name == "hpo.tune"]
    assert len(warned) == 1 and "gp learns from complete trials only" in warned[0]


def test_supervised_workers_leave_the_warning_to_their_supervisor(
    tmp_path: Path, demo_data: Path
) -> None:
    study_file = _gp_study(tmp_path, demo_data)
    storage = f"sqlite:///{tmp_path / 'tiny.db'}"
    done = subprocess.run(
        [sys.executable, "-m", "hpo", "run", "--study", "tiny", "--config", str(study_file),
         "--storage", storage, "--n-trials", "2", "--workers", "2"],
        capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    # Once, from the supervisor; each worker's relayed output would repeat it otherwise.
    assert (done.stdout + done.stderr).count("learns from complete trials only") == 1
