"""One worker's session: the dry run, and preparing (or joining) a study before any trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

from hpo.exceptions import ConfigError
from hpo.testing.studies import tiny_study
from hpo.tune import dry_run, prepare_session

_SPACE = {"train.optimizer.lr": {"float": [0.001, 0.1], "log": True}}


def _study_file(tmp_path: Path, demo_data: Path, **study: object) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        tiny_study(
            demo_data,
            study={"sampler": {"name": "random", "seed": 0}, "pruner": {"name": "none"}, **study},
            search_space=_SPACE,
            epochs=1,
        )
    )
    return path


def test_the_dry_run_checks_and_samples_without_storage(tmp_path: Path, demo_data: Path) -> None:
    study_file = _study_file(tmp_path, demo_data)
    checked = dry_run("tiny", config=study_file)
    lr = checked.sampled_values["train.optimizer.lr"]
    assert 0.001 <= lr <= 0.1
    assert checked.sample.train.optimizer.params["lr"] == lr  # the sample is a full config
    assert checked.masked_storage == f"sqlite:///{tmp_path / 'tiny.db'}"
    assert len(checked.data) > 0 and checked.data.num_classes == 18
    assert [r.scheduler for r in checked.schedules] == [checked.sample.train.scheduler.name]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]  # nothing written


def test_the_dry_run_blames_a_wrong_set(tmp_path: Path, demo_data: Path) -> None:
    study_file = _study_file(tmp_path, demo_data)
    with pytest.raises(ConfigError, match=r"--set train\.epochs=0"):
        dry_run("tiny", config=study_file, overrides=["train.epochs=0"])


def test_prepare_session_creates_the_study_and_a_second_worker_joins_it(
    tmp_path: Path, demo_data: Path
) -> None:
    study_file = _study_file(tmp_path, demo_data)
    decoded: list[tuple[int, int]] = []
    first = prepare_session(
        "tiny",
        config=study_file,
        device=torch.device("cpu"),
        advance=lambda done, total: decoded.append((done, total)),
    )
    assert first.study.study_name == "tiny"
    assert first.storage_url == f"sqlite:///{tmp_path / 'tiny.db'}"
    assert (tmp_path / "tiny.db").is_file()
    result = first.run(n_trials=1)
    assert len(result.ran) == 1
    second = prepare_session("tiny", config=study_file, device=torch.device("cpu"))
    assert second.data_fingerprint == first.data_fingerprint
    assert len(second.study.trials) == 1
    stored = optuna.load_study(study_name="tiny", storage=first.storage_url)
    assert stored.trials[0].state == optuna.trial.TrialState.COMPLETE
    # A worker with another study file is refused before it touches the study.
    with pytest.raises(ConfigError, match=r"different study file: train\.epochs: stored 1"):
        prepare_session(
            "tiny", config=study_file, overrides=["train.epochs=2"], device=torch.device("cpu")
        )
