"""The benchmark scripts import and parse their arguments (no timing: nothing is measured)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))
# The suite of issue #12: JSON lines on stdout and a --quick mode of about a minute.
SUITE = ("bench_data_path", "bench_pruning", "bench_quality", "bench_scaling", "bench_storage")


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 0
    if name in SUITE:
        assert "--quick" in capsys.readouterr().out


def _import(name: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replay_counts_the_epochs_a_pruner_lets_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    replay = _import("replay_pruning", monkeypatch)
    # Six unpruned trials of 4 epochs: the first three climb to 0.5, 0.6, 0.7; the last three
    # stay far below them from their first epoch on.
    db = tmp_path / "none-0.db"
    study = optuna.create_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    good = [[0.2, 0.3, 0.4, 0.5], [0.3, 0.4, 0.5, 0.6], [0.4, 0.5, 0.6, 0.7]]
    bad = [[0.01, 0.02, 0.03, 0.04]] * 3
    for curve in good + bad:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    trials = replay.curves(db)
    assert len(trials) == 6

    unpruned = replay.replay({"name": "none"}, trials, 0.01)
    assert unpruned["epochs"] == 24
    assert unpruned["complete"] == 6
    assert unpruned["best"] == unpruned["reference_best"] == 0.7
    assert unpruned["epochs_to_best"] == 12

    # From the first epoch, after three trials: each bad trial stops after one epoch.
    pruned = replay.replay(
        {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 0}, trials, 0.01
    )
    assert pruned["epochs"] == 12 + 3
    assert pruned["complete"] == 3
    assert pruned["best"] == 0.7
    assert pruned["epochs_to_best"] == 12
