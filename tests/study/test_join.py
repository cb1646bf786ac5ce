"""Creating and joining a study: the stored study file and data fingerprint decide who joins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from hpo.exceptions import ConfigError, DataError
from hpo.study import load_study_spec, open_storage, open_study
from hpo.study._spec import StudySpec


def _spec(tmp_path: Path, choices: list[Any], epochs: int = 1) -> StudySpec:
    path = tmp_path / "s.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data": {"root": str(tmp_path / "data")},
                "train": {"model": "small_cnn", "epochs": epochs},
                "search_space": {"train.optimizer.name": {"choice": choices}},
            }
        )
    )
    return load_study_spec(path)


def _storage(tmp_path: Path) -> optuna.storages.BaseStorage:
    return open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=None)


def _one_trial(study: optuna.Study, spec: StudySpec) -> None:
    choices = spec.search_space["train.optimizer.name"]["choice"]
    trial = study.ask()
    trial.suggest_categorical("train.optimizer.name", choices)
    study.tell(trial, 0.5)


def test_the_first_worker_stores_its_study_file_and_later_ones_must_match(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["sgd", "adam"])
    study = open_study(spec, _storage(tmp_path), data_fingerprint="aaa")
    _one_trial(study, spec)
    assert open_study(spec, _storage(tmp_path), data_fingerprint="aaa").study_name == "s"
    with pytest.raises(ConfigError, match=r"train\.epochs: stored 1, here 2"):
        open_study(
            _spec(tmp_path, ["sgd", "adam"], epochs=2), _storage(tmp_path), data_fingerprint="aaa"
        )
    with pytest.raises(DataError, match="different data"):
        open_study(spec, _storage(tmp_path), data_fingerprint="bbb")
    # Joining on purpose: a different fixed setting is allowed.
    other = _spec(tmp_path, ["sgd", "adam"], epochs=2)
    assert open_study(other, _storage(tmp_path), data_fingerprint="b", allow_mismatch=True)


def test_a_changed_choice_list_is_refused_even_with_allow_mismatch(tmp_path: Path) -> None:
    spec = _spec(tmp_path, ["sgd", "adam"])
    _one_trial(open_study(spec, _storage(tmp_path), data_fingerprint="aaa"), spec)
    grown = _spec(tmp_path, ["sgd", "adam", "adamw"])
    changed = (
        r"train\.optimizer\.name offers \['sgd', 'adam', 'adamw'\] here but \['sgd', 'adam'\]"
    )
    with pytest.raises(ConfigError, match=changed):
        open_study(grown, _storage(tmp_path), data_fingerprint="aaa", allow_mismatch=True)


def test_the_created_study_names_its_value_for_the_dashboard(tmp_path: Path) -> None:
    # optuna-dashboard shows "Objective 0" for a study without metric names.
    spec = _spec(tmp_path, ["sgd", "adam"])
    open_study(spec, _storage(tmp_path), data_fingerprint="aaa")
    stored = optuna.load_study(study_name="s", storage=_storage(tmp_path))
    assert stored.metric_names == ["validation macro-F1"]
    # A joining worker finds the name stored and joins without error.
    joined = open_study(spec, _storage(tmp_path), data_fingerprint="aaa")
    _one_trial(joined, spec)
    assert joined.metric_names == ["validation macro-F1"]
