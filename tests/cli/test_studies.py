"""``hpo studies list | show | delete`` on real SQLite studies."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo.cli import main


def run_cli(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def studies_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "studies"
    folder.mkdir()
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'alpha.db'}", study_name="alpha", direction="maximize"
    )

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("train.optimizer.lr", 1e-4, 1e-1, log=True)
        y = trial.suggest_categorical("train.batch_size", [16, 32])
        if trial.number == 3:
            raise optuna.TrialPruned()
        return x * 5 + (0.1 if y == 32 else 0.0)

    study.optimize(objective, n_trials=8)
    (folder / "alpha.yaml").write_text("{}\n")
    (folder / "beta.yaml").write_text("{}\n")
    return folder


def test_list_shows_started_and_unstarted_studies(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("studies", "list") == 0
    out = capsys.readouterr().out
    alpha = next(line for line in out.splitlines() if "alpha" in line)
    assert " 8 " in alpha and " 7 " in alpha and " 1 " in alpha  # trials, complete, pruned
    assert "beta" in out and "not started" in out


def test_show_prints_best_top_counts_and_importances(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = optuna.load_study(study_name="alpha", storage="sqlite:///studies/alpha.db")
    assert run_cli("studies", "show", "alpha", "--top", "3") == 0
    out = capsys.readouterr().out
    assert "7 complete, 1 pruned" in out
    assert "top 3" in out
    assert f"{study.best_value:.4f}" in out
    assert "parameter importances" in out and "optimizer.lr" in out


def test_delete_removes_the_study(studies_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("studies", "delete", "alpha", "--yes") == 0
    assert "deleted study alpha (8 trials)" in capsys.readouterr().out
    assert run_cli("studies", "show", "alpha") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study named 'alpha'")


def test_show_of_a_study_never_run_is_one_line_error(
    studies_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("studies", "show", "beta") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no study named 'beta'") and len(err.splitlines()) == 1
    assert not (studies_dir / "beta.db").exists()
