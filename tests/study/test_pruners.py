"""Pruner entries: every registered pruner builds from a study file's mapping and prunes."""

from __future__ import annotations

import optuna
import pytest

from hpo.study import PRUNERS, build_pruner


@pytest.mark.parametrize("name", PRUNERS.names())
def test_every_pruner_builds_and_prunes_a_clearly_bad_trial(name: str) -> None:
    startup = {"n_startup_trials": 1} if "n_startup_trials" in PRUNERS.parameters(name) else {}
    pruner = build_pruner({"name": name} | startup)
    # Hyperband picks a bracket from a hash of the study name: fix it for a repeatable test.
    study = optuna.create_study(study_name="pruners", direction="maximize", pruner=pruner)
    for _ in range(4):
        trial = study.ask()
        for step in range(6):
            trial.report(0.9, step)
            assert not trial.should_prune()  # rung-based pruners record rungs here
        study.tell(trial, 0.9)
    bad = study.ask()
    pruned = False
    for step in range(6):
        bad.report(0.01, step)
        if bad.should_prune():
            pruned = True
            break
    assert pruned is not isinstance(pruner, optuna.pruners.NopPruner)


def test_pruner_units() -> None:
    # The objective reads the unit: Wilcoxon compares folds, the others compare epochs.
    assert PRUNERS.info("wilcoxon").unit == "fold"
    assert {PRUNERS.info(n).unit for n in PRUNERS.names() if n != "wilcoxon"} == {"epoch"}
