"""``study.enqueue`` and ``hpo run --warm-start`` through the command line, trials trained."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.study import FINISHED, is_discarded, is_imported, read_study_record
from hpo.testing.studies import tiny_study

CliRun = Callable[..., tuple[int, str, str]]

_LR = {"train.optimizer.lr": {"float": [0.001, 0.1], "log": True}}


def _write(tmp_path: Path, demo_data: Path, *, name: str = "tiny", **study: Any) -> Path:
    settings = {
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "storage": f"sqlite:///{tmp_path / 'studies.db'}",
        **study,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(tiny_study(demo_data, study=settings, search_space=_LR, epochs=1))
    return path


def _load(tmp_path: Path, name: str = "tiny") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'studies.db'}")


def _trained(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.trials if not is_discarded(t) and not is_imported(t)]


def test_enqueued_configurations_run_first_and_once_across_runs(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    entries = [{"train.optimizer.lr": 0.01}, {"train.optimizer.lr": 0.05}]
    study_file = _write(tmp_path, demo_data, enqueue=entries)
    args = ("run", "--study", "tiny", "--config", study_file, "--quiet")
    code, _, err = run_cli(*args, "--n-trials", "3")
    assert code == 0, err
    assert "enqueued 2 configurations of study.enqueue" in err
    study = _load(tmp_path)
    lrs = [t.params["train.optimizer.lr"] for t in study.trials]
    assert lrs[:2] == [0.01, 0.05] and len(lrs) == 3
    assert study.trials[0].user_attrs["config"]["train"]["optimizer"]["lr"] == 0.01

    # A second run joining the study enqueues nothing again.
    code, _, err = run_cli(*args, "--n-trials", "4")
    assert code == 0, err
    assert "of study.enqueue" not in err
    lrs = [t.params["train.optimizer.lr"] for t in _load(tmp_path).trials]
    assert lrs.count(0.01) == 1 and lrs.count(0.05) == 1 and len(lrs) == 4


@pytest.mark.slow
def test_two_supervised_workers_enqueue_once(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    entries = [{"train.optimizer.lr": 0.01}, {"train.optimizer.lr": 0.05}]
    study_file = _write(tmp_path, demo_data, enqueue=entries)
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "3", "--workers", "2",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    study = _load(tmp_path)
    lrs = [t.params["train.optimizer.lr"] for t in _trained(study)]
    assert sorted(lrs).count(0.01) == 1 and lrs.count(0.05) == 1
    assert len(study.get_trials(states=FINISHED)) == 3
    assert not study.get_trials(states=(TrialState.WAITING,))
    assert len(read_study_record(study).enqueued) == 2


def _source(tmp_path: Path, n: int = 6) -> None:
    """Study ``src``: ``n`` complete trials better than any tiny trial, and two whose learning
    rate is outside this study's range."""
    source = optuna.create_study(
        study_name="src", storage=f"sqlite:///{tmp_path / 'studies.db'}", direction="maximize"
    )
    dist = FloatDistribution(1e-4, 1e-1, log=True)
    for lr in [0.002 + k / 1000 for k in range(n)] + [0.0002, 0.0005]:
        source.add_trial(
            create_trial(
                value=0.99,
                params={"train.optimizer.lr": lr},
                distributions={"train.optimizer.lr": dist},
                user_attrs={"fold_scores": [0.99]},
            )
        )


def test_a_warm_start_imports_once_counts_nothing_and_is_never_the_best(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    _source(tmp_path)
    study_file = _write(tmp_path, demo_data)
    args = ("run", "--study", "tiny", "--config", study_file, "--quiet", "--warm-start", "src")
    code, _, err = run_cli(*args, "--n-trials", "3")
    assert code == 0, err
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    assert (
        f"warm start from study src ({storage}): 6 imported, 2 rejected: 2 train.optimizer.lr "
        "outside float [0.001, 0.1] log (trials 6, 7)"
    ) in err
    study = _load(tmp_path)
    assert len(_trained(study)) == 3 and sum(is_imported(t) for t in study.trials) == 6

    # Not the best, though better: export and show pick a trial trained here.
    out = tmp_path / "best.yaml"
    code, _, err = run_cli("export", "--study", "tiny", "--storage", storage, "--out", out)
    assert code == 0, err
    exported = yaml.safe_load(out.read_text())["provenance"]
    assert not is_imported(study.trials[exported["trial"]]) and exported["value"] < 0.99
    code, shown, err = run_cli("studies", "show", "tiny", "--storage", storage)
    assert code == 0, err
    assert "3 complete, 6 imported" in shown
    assert "imported: 6 trials by --warm-start from src (6 from" in shown
    assert "(imported: src #0)" in shown

    # A second run with the same --warm-start skips it; the total counts trials trained here.
    code, _, err = run_cli(*args, "--n-trials", "4")
    assert code == 0, err
    assert "already imported into this study; skipped" in err
    study = _load(tmp_path)
    assert len(_trained(study)) == 4 and sum(is_imported(t) for t in study.trials) == 6


def test_an_unknown_source_study_is_one_line_and_nothing_is_written(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    _source(tmp_path)
    study_file = _write(tmp_path, demo_data)
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "1",
        "--warm-start", "nope",
    )  # fmt: skip
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: --warm-start nope: no study named 'nope' in sqlite:///{tmp_path / 'studies.db'}"
        "; studies there: src"
    ]
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'studies.db'}") == ["src"]


def test_the_dry_run_shows_the_entries_and_what_a_warm_start_would_import(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    _source(tmp_path)
    study_file = _write(tmp_path, demo_data, enqueue=[{"train.optimizer.lr": 0.01}])
    args = ("run", "--study", "tiny", "--config", study_file, "--dry-run")
    code, out, err = run_cli(*args, "--warm-start", "src")
    assert code == 0, err
    assert "study.enqueue: 1 configurations tried first:\n  {train.optimizer.lr: 0.01}" in out
    assert "src (sqlite:///" in out and "): 6 would be imported, 2 rejected: 2 " in out
    assert optuna.get_all_study_names(f"sqlite:///{tmp_path / 'studies.db'}") == ["src"]
    code, _, err = run_cli(*args, "--warm-start-storage", "sqlite:///x.db")
    assert code == 2
    assert err.strip() == "error: --warm-start-storage needs --warm-start OTHER_STUDY"
