"""The declarative search space: parsing, validation against the config, sampling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from hpo.exceptions import ConfigError
from hpo.space import Choice, Conditional, FloatParam, IntParam, parse_space
from hpo.study import load_study_spec

BASE: dict[str, Any] = {
    "data": {},
    "train": {"optimizer": {"name": "adamw"}, "loss": {"name": "cross_entropy"}},
}


def test_parses_every_kind() -> None:
    space = parse_space(
        {
            "train.optimizer.lr": {"float": [1e-4, 1e-1], "log": True},
            "train.epochs": {"int": [1, 4], "step": 1},
            "train.batch_size": {"choice": [16, 32]},
            "train.scheduler": {
                "choice": {"step": {"step_size": {"int": [1, 3]}, "gamma": 0.5}, "cosine": {}}
            },
        },
        base=BASE,
        source="s.yaml",
    )
    assert space.params["train.optimizer.lr"] == FloatParam(1e-4, 1e-1, log=True)
    assert space.params["train.epochs"] == IntParam(1, 4)
    assert space.params["train.batch_size"] == Choice((16, 32))
    cond = space.params["train.scheduler"]
    assert isinstance(cond, Conditional)
    assert cond.branches["step"]["gamma"] == 0.5


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ({"train.optimizer.lr": {"float": [0.1, 0.01]}}, "low must be below high"),
        ({"train.optimizer.lr": {"float": [0.0, 0.1], "log": True}}, "log range needs low > 0"),
        ({"train.loss": {"choice": {"nope": {}}}}, "unknown loss 'nope'"),
        ({"train.epochz": {"int": [1, 3]}}, "unknown key 'train.epochz'"),
        ({"train.epochs": {"int": [0, 3]}}, "greater than or equal to 1"),
        ({"epochs": {"int": [1, 3]}}, "dotted paths under data. or train."),
        ({"train.epochs": {"int": [1, 3], "lg": True}}, "unknown option 'lg'"),
        ({"train.epochs": {"int": [1.5, 3]}}, "int bounds must be ints"),
        ({"train.epochs": [1, 2]}, "expected one of"),
        ({"train.batch_size": {"choice": []}}, "non-empty list"),
        ({"train.loss": {"choice": {"focal": {"gama": {"float": [1, 2]}}}}}, "gama"),
        ({"train.optimizer.lr": {"float": [1e-3, 1e-1], "int": [1, 2]}}, "only one of"),
    ],
)
def test_bad_space_is_refused_naming_the_key(space: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_space(space, base=BASE, source="studies/x.yaml")
    message = str(info.value)
    assert message.startswith("studies/x.yaml: search_space.")
    assert next(iter(space)) in message
    assert expected in message


def test_sampling_uses_optuna_and_branch_scoped_names() -> None:
    space = parse_space(
        {
            "train.optimizer.lr": {"float": [1e-4, 1e-1], "log": True},
            "train.loss": {
                "choice": {"focal": {"gamma": {"float": [0.5, 3.0]}}, "cross_entropy": {}}
            },
        },
        base=BASE,
        source="s",
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(20):
        trial = study.ask()
        values = space.sample(trial)
        assert 1e-4 <= values["train.optimizer.lr"] <= 1e-1
        loss = values["train.loss"]
        seen.add(loss["name"])
        if loss["name"] == "focal":
            assert 0.5 <= loss["gamma"] <= 3.0
            assert "train.loss[focal].gamma" in trial.params
        else:
            assert loss == {"name": "cross_entropy"}
            assert not any(k.startswith("train.loss[focal]") for k in trial.params)
        study.tell(trial, 0.0)
    assert seen == {"focal", "cross_entropy"}


def test_fingerprint_changes_with_the_space() -> None:
    a = parse_space({"train.epochs": {"int": [1, 3]}}, base=BASE, source="s")
    b = parse_space({"train.epochs": {"int": [1, 4]}}, base=BASE, source="s")
    assert (
        a.fingerprint()
        == parse_space({"train.epochs": {"int": [1, 3]}}, base=BASE, source="s").fingerprint()
    )
    assert a.fingerprint() != b.fingerprint()


def test_grid_only_for_discrete_spaces() -> None:
    space = parse_space(
        {"train.batch_size": {"choice": [8, 16]}, "train.epochs": {"int": [1, 3]}},
        base=BASE,
        source="s",
    )
    assert space.grid() == {"train.batch_size": [8, 16], "train.epochs": [1, 2, 3]}
    continuous = parse_space(
        {"train.optimizer.lr": {"float": [1e-3, 1e-1]}}, base=BASE, source="s"
    )
    with pytest.raises(ConfigError, match="grid sampler"):
        continuous.grid()


def test_set_pins_a_searched_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "train: {epochs: 2}\n"
        "search_space:\n"
        "  train.optimizer.lr: {float: [1.0e-4, 1.0e-1], log: true}\n"
        "  train.batch_size: {choice: [8, 16]}\n"
    )
    spec = load_study_spec(
        path, overrides=["train.batch_size=8", "train.epochs=3", "train.epochs=4"]
    )
    assert "train.batch_size" not in spec.search_space
    assert "train.optimizer.lr" in spec.search_space
    base = spec.base_config()
    assert base.train.batch_size == 8
    assert base.train.epochs == 4  # a later --set of the same key wins


def test_set_of_a_parameter_of_a_default_component(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("train: {epochs: 2}\n")
    spec = load_study_spec(path, overrides=["train.loss.weighting=inverse", "train.model.width=8"])
    base = spec.base_config()
    assert base.train.loss.name == "cross_entropy"
    assert base.train.loss.params["weighting"] == "inverse"
    assert base.train.model.name == "small_cnn" and base.train.model.params["width"] == 8
