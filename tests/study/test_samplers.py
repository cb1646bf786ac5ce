"""Sampler entries: every registered sampler builds from a study file's mapping and samples."""

from __future__ import annotations

import math

import optuna
import pytest

from hpo.space import parse_space
from hpo.study import SAMPLERS, build_sampler


@pytest.mark.parametrize("name", SAMPLERS.names())
def test_every_sampler_builds_from_the_study_file_and_samples(name: str) -> None:
    exhaustible = SAMPLERS.info(name).exhaustible
    space = parse_space(
        {"train.batch_size": {"choice": [8, 16]}, "train.epochs": {"int": [1, 3]}}
        | ({} if exhaustible else {"train.optimizer.lr": {"float": [1e-4, 1e-1], "log": True}}),
        base={"data": {}, "train": {"optimizer": {"name": "adamw"}}},
        source="s",
    )
    sampler = build_sampler({"name": name, "seed": 0}, grid=space.grid)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    seen = []
    for _ in range(5):
        trial = study.ask()
        values = space.sample(trial)
        assert values["train.batch_size"] in (8, 16) and 1 <= values["train.epochs"] <= 3
        seen.append(tuple(sorted(values.items())))
        study.tell(trial, float(values["train.epochs"]))
    if exhaustible:
        assert len(set(seen)) == 5  # grid points are not repeated
        assert study.sampler.is_exhausted(study) is False
        study.optimize(lambda t: float(space.sample(t)["train.epochs"]), n_trials=1)
        assert study.sampler.is_exhausted(study)  # the worker stops on this


def test_gp_models_the_complete_trials_after_its_start_up() -> None:
    space = parse_space(
        {"train.optimizer.lr": {"float": [1e-5, 1e-1], "log": True}},
        base={"data": {}, "train": {"optimizer": {"name": "adamw"}}},
        source="s",
    )
    sampler = build_sampler({"name": "gp", "seed": 0, "n_startup_trials": 4}, grid=space.grid)
    study = optuna.create_study(sampler=sampler, direction="maximize")
    study.optimize(lambda t: -abs(math.log10(space.sample(t)["train.optimizer.lr"]) + 2), 12)
    distance = [-t.value for t in study.trials]
    # The random start-up lands anywhere; the modelled trials close in on lr = 1e-2.
    assert min(distance[4:]) < min(distance[:4])
    assert sorted(distance[4:])[3] < 0.5
