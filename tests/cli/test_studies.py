"""``hpo studies list | show | delete`` on real SQLite studies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.cli._display import EXPORT_FILE, FOLDS_NOTE
from hpo.study import DISCARDED_ATTR, record_result

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def studies_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "studies"
    folder.mkdir()
    study = optuna.create_study(
        storage=f"sqlite:///{folder / 'alpha.db'}",
        study_name="alpha",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    # Both branches among the complete trials, whatever the sampler draws (unseeded, all 7 took
    # one branch now and then, and the other's parameter was missing from the tables).
    for number in range(8):
        study.enqueue_trial({"train.scheduler": "step" if number % 2 else "plateau"})

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("train.optimizer.lr", 1e-4, 1e-1, log=True)
        y = trial.suggest_categorical("train.batch_size", [16, 32])
        # Conditional branches, named as hpo.space names them: Rich must not eat "[step]".
        if trial.suggest_categorical("train.scheduler", ["step", "plateau"]) == "step":
            x += trial.suggest_float("train.scheduler[step].gamma", 0.1, 0.9)
        else:
            x += trial.suggest_float("train.scheduler[plateau].factor", 0.1, 0.5)
        if trial.number == 3:
            raise optuna.TrialPruned()
        value = x * 5 + (0.1 if y == 32 else 0.0)
        folds = [value - 0.01234, value + 0.01234]  # two folds, their mean the value
        record_result(
            trial, fold_scores=folds, epochs_trained=2, history=[], seconds=0.1, device="cpu"
        )
        return value

    study.optimize(objective, n_trials=8)
    (folder / "alpha.yaml").write_text("{}\n")
    (folder / "beta.yaml").write_text("{}\n")
    return folder


def test_list_shows_started_and_unstarted_studies(studies_dir: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("studies", "list")
    assert code == 0
    alpha = next(line for line in out.splitlines() if "alpha" in line)
    assert alpha.split("\t")[:4] == ["alpha", "8", "7", "1"]  # trials, complete, pruned
    assert "beta" in out and "not started" in out


def test_list_leaves_out_discarded_trials_as_show_does(studies_dir: Path, run_cli: CliRun) -> None:
    # A worker that lost the race for the study's last slot fails its trial and marks it
    # discarded: bookkeeping, not a failure, in every summary.
    study = optuna.load_study(study_name="alpha", storage="sqlite:///studies/alpha.db")
    trial = study.ask()
    trial.set_user_attr(DISCARDED_ATTR, True)
    study.tell(trial, state=TrialState.FAIL)

    code, out, err = run_cli("studies", "list")
    assert code == 0, err
    alpha = next(line for line in out.splitlines() if "alpha" in line)
    cells = alpha.split("\t")
    assert cells[:5] == ["alpha", "8", "7", "1", "0"]  # trials, complete, pruned, failed
    code, out, err = run_cli("studies", "show", "alpha")
    assert code == 0, err
    assert "7 complete, 1 pruned" in out and "fail" not in out
    code, out, _ = run_cli("studies", "delete", "alpha", "--yes")
    assert "deleted study alpha (8 trials)" in out


def test_show_prints_best_top_counts_and_importances(studies_dir: Path, run_cli: CliRun) -> None:
    study = optuna.load_study(study_name="alpha", storage="sqlite:///studies/alpha.db")
    code, out, _ = run_cli("studies", "show", "alpha", "--top", "3")
    assert code == 0
    assert "7 complete, 1 pruned" in out
    assert "top 3" in out
    assert f"{study.best_value:.4f}" in out
    assert "parameter importances" in out and "optimizer.lr" in out
    # Branch parameters keep their branch: in the importance table by full name ...
    importances = out.split("parameter importances", 1)[1]
    assert "train.scheduler[step].gamma" in importances
    assert "train.scheduler[plateau].factor" in importances
    # ... and in the top table by the same name.
    top = out.split("top 3", 1)[1].split("parameter importances", 1)[0]
    assert "train.scheduler[step].gamma=" in top or "train.scheduler[plateau].factor=" in top
    # Output is not a terminal: one line per row, nothing cut, no escape codes.
    assert "\x1b" not in out and "…" not in out
    # The next step is named, with the storage (the default one here: no --storage).
    last = out.rstrip().splitlines()[-1]
    assert last.startswith(f"next: hpo export --study alpha --out {EXPORT_FILE}  (")


def test_show_prints_plain_rows_and_says_what_the_fold_column_is(
    studies_dir: Path, run_cli: CliRun
) -> None:
    study = optuna.load_study(study_name="alpha", storage="sqlite:///studies/alpha.db")
    code, out, err = run_cli("studies", "show", "alpha", "--top", "3")
    assert code == 0, err
    # Not a terminal: no box drawing, one tab-separated line per row under a header line.
    assert not set(out) & set("│┃━─┏┡└")
    lines = out.splitlines()
    header = lines.index("trial\tvalue\tfold macro-F1\tparameters")
    trial, value, folds, params = lines[header + 1].split("\t")
    assert int(trial) == study.best_trial.number and value == f"{study.best_value:.4f}"
    # Each fold's macro-F1, rounded as the value is, and a line saying what the columns are.
    best = study.best_value
    assert folds == f"{best - 0.01234:.4f} {best + 0.01234:.4f}"
    assert lines[header + 4] == FOLDS_NOTE
    assert "fold macro-F1: each of those folds" in FOLDS_NOTE
    assert params.startswith("train.optimizer.lr=")
    assert "parameter\timportance" in lines


def test_the_next_step_is_the_readmes_export_command(studies_dir: Path, run_cli: CliRun) -> None:
    code, out, err = run_cli("studies", "show", "alpha")
    assert code == 0, err
    hint = out.rstrip().splitlines()[-1]
    command = hint.removeprefix("next: ").split("  (", 1)[0]
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert command.replace("alpha", "mask-clf") in readme
    assert f"hpo train --config {EXPORT_FILE}" in hint and f"--config {EXPORT_FILE}" in readme


def test_a_missing_study_name_is_one_error_line(studies_dir: Path, run_cli: CliRun) -> None:
    for command in ("report", "show", "delete"):
        code, out, err = run_cli("studies", command)
        assert code == 2 and out == ""
        assert err.splitlines() == [
            f"error: hpo studies {command}: missing argument 'NAME' (usage: hpo studies "
            f"{command} [OPTIONS] NAME; hpo studies {command} -h for help)"
        ]


def test_show_names_the_storage_in_the_next_step_when_it_is_not_the_default(
    studies_dir: Path, run_cli: CliRun, tmp_path: Path
) -> None:
    (studies_dir / "alpha.db").rename(tmp_path / "elsewhere.db")
    code, out, err = run_cli("studies", "show", "alpha", "--storage", "sqlite:///elsewhere.db")
    assert code == 0, err
    assert "next: hpo export --study alpha --storage sqlite:///elsewhere.db" in out


def test_errors_keep_brackets(studies_dir: Path, run_cli: CliRun) -> None:
    # Rich markup in a user's value is printed as typed, never interpreted.
    code, _, err = run_cli("studies", "show", "[bold]gamma[/]")
    assert code == 2
    assert err.startswith("error: study name '[bold]gamma[/]' is not allowed")


def test_delete_removes_the_study(studies_dir: Path, run_cli: CliRun) -> None:
    code, out, _ = run_cli("studies", "delete", "alpha", "--yes")
    assert code == 0
    assert "deleted study alpha (8 trials)" in out
    code, _, err = run_cli("studies", "show", "alpha")
    assert code == 2
    assert err.startswith("error: no study named 'alpha'")


def test_show_of_a_study_never_run_is_one_line_error(studies_dir: Path, run_cli: CliRun) -> None:
    code, _, err = run_cli("studies", "show", "beta")
    assert code == 2
    assert err.startswith("error: no study named 'beta'") and len(err.splitlines()) == 1
    assert not (studies_dir / "beta.db").exists()
