"""``hpo run`` end to end on CPU: a tiny study on real demo images."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

from hpo.study import DISCARDED_ATTR, FINISHED
from hpo.testing.studies import tiny_study

CliRun = Callable[..., tuple[int, str, str]]

# The random sampler with seed 3 draws lr 0.05, 1e30 (fails), 1e-7 (pruned), ...
TINY_SEARCH = {
    "train.optimizer.lr": {"choice": [0.05, 1.0e-7, 1.0e30]},
    "train.loss": {"choice": {"cross_entropy": {}, "focal": {"gamma": {"float": [0.5, 2.0]}}}},
}


def write_study(
    tmp_path: Path,
    demo_data: Path,
    *,
    epochs: int = 2,
    folds: int = 1,
    pruner: dict[str, Any] | None = None,
    search_space: dict[str, Any] | None = None,
) -> Path:
    path = tmp_path / "tiny.yaml"
    study = {
        "sampler": {"name": "random", "seed": 3},
        "pruner": pruner or {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "storage": f"sqlite:///{tmp_path / 'tiny.db'}",
    }
    space = TINY_SEARCH if search_space is None else search_space
    path.write_text(
        tiny_study(demo_data, study=study, search_space=space, epochs=epochs, folds=folds)
    )
    return path


def run_tiny(
    run_cli: CliRun, study_file: Path, n_trials: int, *extra: str
) -> tuple[int, str, str]:
    """``hpo run`` of the tiny study, quietly."""
    return run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", n_trials, "--quiet", *extra
    )


def load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")


def test_tiny_study_end_to_end(tmp_path: Path, demo_data: Path, run_cli: CliRun) -> None:
    study_file = write_study(tmp_path, demo_data, folds=2)
    code, _, _ = run_tiny(run_cli, study_file, 6)
    assert code == 0
    study = load(tmp_path)
    trials = [t for t in study.trials if DISCARDED_ATTR not in t.user_attrs]
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED) == 6
    assert TrialState.PRUNED in states
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert 0.0 <= trial.value <= 1.0
            # One report per epoch, steps comparable across trials: fold * epochs + epoch.
            assert sorted(trial.intermediate_values) == [0, 1, 2, 3]
            assert len(trial.user_attrs["fold_scores"]) == 2
            assert trial.value == pytest.approx(sum(trial.user_attrs["fold_scores"]) / 2)
            assert len(trial.user_attrs["per_class_f1"]) == 18
            assert (
                trial.user_attrs["config"]["train"]["optimizer"]["lr"]
                == trial.params["train.optimizer.lr"]
            )
        if trial.state == TrialState.PRUNED:
            assert trial.intermediate_values
            assert trial.user_attrs["epochs_trained"] < 4
        if trial.state == TrialState.FAIL:
            # lr=1e30 blows the loss up: failed with its reason, and the study went on.
            assert (
                "nan" in trial.user_attrs["fail_reason"].lower()
                or "inf" in trial.user_attrs["fail_reason"].lower()
            )
    assert TrialState.FAIL in states

    # Re-running resumes: a larger total adds only the missing trials.
    assert run_tiny(run_cli, study_file, 7)[0] == 0
    assert len(load(tmp_path).get_trials(states=FINISHED)) == 7


def test_worker_with_a_different_study_file_is_refused(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    assert run_tiny(run_cli, study_file, 1)[0] == 0
    code, _, err = run_tiny(run_cli, study_file, 2, "--set", "train.epochs=2")
    assert code == 2
    assert "different study file: train.epochs: stored 1, here 2" in err
    assert "Traceback" not in err
    assert len(load(tmp_path).trials) == 1
    # Joining on purpose is allowed.
    assert run_tiny(run_cli, study_file, 2, "--set", "train.epochs=2", "--allow-mismatch")[0] == 0
    assert len(load(tmp_path).get_trials(states=FINISHED)) == 2


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("stduy: {}\n", "unknown section 'stduy'"),
        (
            "search_space:\n  train.optimizer.lr: {float: [0.1, 0.01]}\n",
            "search_space.train.optimizer.lr: low must be below high",
        ),
        ("search_space:\n  train.loss: {choice: {hinge: {}}}\n", "unknown loss 'hinge'"),
        ("train: {epochs: 0}\n", "train.epochs"),
        ("study: {pruner: {name: sometimes}}\n", "unknown pruner 'sometimes'"),
        ("study: {sampler: {name: tpe, seeed: 1}}\n", "seeed"),
        ("train: [1, 2\n", "invalid YAML"),
        (  # 3 folds give no p-value below 0.125: the pruner could never act
            "study: {pruner: {name: wilcoxon}}\ntrain: {kfold: {n_splits: 5, folds: 3}}\n",
            "can stop a trial only after 4 folds",
        ),
        (
            "study: {pruner: {name: wilcoxon, p_threshold: 0.2}}\n"
            "train: {kfold: {n_splits: 3, folds: all}}\n",
            "set p_threshold above 0.25 to stop after 2 folds",
        ),
        (  # here the startup steps, not the threshold, keep it from ever acting
            "study: {pruner: {name: wilcoxon, p_threshold: 0.5, n_startup_steps: 3}}\n"
            "train: {kfold: {n_splits: 3, folds: all}}\n",
            "set n_startup_steps below 3",
        ),
    ],
)
def test_bad_study_file_exits_2_before_any_trial(
    tmp_path: Path, run_cli: CliRun, content: str, expected: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    code, _, err = run_cli("run", "--study", "bad", "--config", str(path), "--n-trials", "1")
    assert code == 2
    assert err.startswith("error: ") and str(path) in err and expected in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad.db").exists()


def test_unknown_study_lists_the_study_files(
    tmp_path: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "mask-clf.yaml").write_text("{}\n")
    code, _, err = run_cli("run", "--study", "mask", "--n-trials", "1")
    assert code == 2
    assert "studies/mask.yaml not found; studies in studies/: mask-clf" in err


def _hpo(*args: str, **kwargs: object) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )  # type: ignore[call-overload]


@pytest.mark.slow
def test_two_workers_finish_exactly_the_total(tmp_path: Path, demo_data: Path) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    args = ("run", "--study", "tiny", "--config", str(study_file), "--n-trials", "6", "--quiet")
    workers = [_hpo(*args) for _ in range(2)]
    outputs = [w.communicate(timeout=240)[0].decode() for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    study = load(tmp_path)
    assert len(study.get_trials(states=FINISHED)) == 6
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))
    # Both workers took part.
    assert all("trial" in out for out in outputs), outputs


def test_run_on_each_storage_never_prints_the_password(
    tmp_path: Path, demo_data: Path, storage_url: str, run_cli: CliRun
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    code, out, err = run_cli(
        "run",
        "--study",
        "tiny",
        "--config",
        str(study_file),
        "--n-trials",
        "2",
        "--storage",
        storage_url,
    )
    assert code == 0, err
    study = optuna.load_study(
        study_name="tiny", storage=storage_url.replace("postgresql://", "postgresql+psycopg://")
    )
    assert len(study.get_trials(states=FINISHED)) == 2
    if "secret" in storage_url:
        assert "secret" not in out + err
        assert "***" in out + err


def test_run_sets_the_device_backend_switches_once(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `hpo train` and `hpo predict` do: cuDNN autotuning and TF32 on a GPU (nothing on the
    # CPU, so the call itself is what this test can see).
    import hpo.workers._request

    calls: list[torch.device] = []
    real = hpo.workers._request.configure_backends

    def spy(device: torch.device, **kwargs: Any) -> None:
        calls.append(device)
        real(device, **kwargs)

    monkeypatch.setattr(hpo.workers._request, "configure_backends", spy)
    study_file = write_study(tmp_path, demo_data, epochs=1)
    code, _, err = run_tiny(run_cli, study_file, 1, "--device", "cpu")
    assert code == 0, err
    assert calls == [torch.device("cpu")]


def test_worker_with_different_data_is_refused(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    from hpo.demo import make_demo_data

    study_file = write_study(tmp_path, demo_data, epochs=1)
    assert run_tiny(run_cli, study_file, 1)[0] == 0
    # The same data under another root joins (data.root may differ between machines) ...
    moved = tmp_path / "elsewhere"
    shutil.copytree(demo_data, moved)
    code, _, err = run_tiny(run_cli, study_file, 2, "--set", f"data.root={moved}")
    assert code == 0, err
    # ... other data does not.
    other = make_demo_data(tmp_path / "other", profiles=9, seed=7, eval_images=0)
    code, _, err = run_tiny(run_cli, study_file, 3, "--set", f"data.root={other}")
    assert code == 2
    assert "was started on different data" in err and "--allow-mismatch" in err
    assert len(load(tmp_path).get_trials(states=FINISHED)) == 2


def test_wilcoxon_reports_once_per_fold(tmp_path: Path, demo_data: Path, run_cli: CliRun) -> None:
    study_file = write_study(
        tmp_path,
        demo_data,
        epochs=1,
        folds=3,
        pruner={"name": "wilcoxon", "p_threshold": 0.5, "n_startup_steps": 1},
        search_space={**TINY_SEARCH, "train.optimizer.lr": {"choice": [0.05, 1.0e-7]}},
    )
    code, _, err = run_tiny(run_cli, study_file, 4)
    assert code == 0, err
    trials = load(tmp_path).get_trials(states=FINISHED)
    assert len(trials) == 4
    for trial in trials:
        # Steps are fold indices; a trial the pruner stops returns the mean of its folds.
        steps = sorted(trial.intermediate_values)
        assert steps == list(range(len(steps))) and 1 <= len(steps) <= 3
        assert trial.value == pytest.approx(sum(trial.user_attrs["fold_scores"]) / len(steps))


def test_dry_run_prints_the_space_and_a_sampled_config_and_writes_nothing(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = write_study(tmp_path, demo_data)
    code, out, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--dry-run", "--set", "train.epochs=3"
    )
    assert code == 0, err
    assert "train.optimizer.lr" in out and "choice 0.05 | 1e-07 | 1e+30" in out
    # The branch name survives Rich (no markup eaten) and the branch's parameter is described.
    assert "focal(gamma: float [0.5, 2])" in out
    config = yaml.safe_load(out.split("would write for it):\n", 1)[1].rsplit("dry run:", 1)[0])
    assert config["train"]["epochs"] == 3  # --set applied
    assert config["train"]["optimizer"]["lr"] in (0.05, 1e-7, 1e30)
    assert config["train"]["loss"]["name"] in ("cross_entropy", "focal")
    assert "people/groups" in out and "18 classes" in out
    assert not (tmp_path / "tiny.db").exists()  # the storage was never opened


def test_dry_run_refuses_a_bad_study_file_before_anything(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    focal = {"gama": {"float": [0.5, 2.0]}}  # misspelt
    bad_space = {**TINY_SEARCH, "train.loss": {"choice": {"cross_entropy": {}, "focal": focal}}}
    study_file = write_study(tmp_path, demo_data, search_space=bad_space)
    code, _, err = run_cli("run", "--study", "tiny", "--config", study_file, "--dry-run")
    assert code == 2
    assert err.startswith("error: ") and "gama" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "tiny.db").exists()


def test_piped_output_is_one_unwrapped_line_per_event(tmp_path: Path, demo_data: Path) -> None:
    # A long storage path: the header is far wider than the 80 columns a pipe used to get.
    deep = tmp_path / ("d" * 60)
    deep.mkdir()
    study_file = write_study(deep, demo_data, epochs=1)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "80"}
    env.pop("FORCE_COLOR", None)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "hpo", "run", "--study", "tiny"),
            *("--config", str(study_file), "--n-trials", "3", "--set", "train.optimizer.lr=0.05"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert "\x1b" not in done.stderr  # no colours, no cursor movement of a live bar
    (header,) = [line for line in lines if line.startswith("study tiny | storage ")]
    assert re.search(r"\| device cpu, \d+ CPU threads? \| 1 parameters searched$", header)
    assert len(header) > 80
    trial_lines = [line for line in lines if line.startswith("trial ")]
    assert len(trial_lines) == 3
    # Number, outcome with its value, the parameters as stored, the study's pace, on one line.
    outcome = r"(complete \d\.\d{4}|pruned at step \d+ \(\d\.\d{4}\))"
    for line in trial_lines:
        assert re.match(rf"trial +\d+  {outcome}  train.loss=", line), line
        assert "train.loss=cross_entropy" in line or "train.loss[focal].gamma=" in line
        assert re.search(r" \| \d/3 finished, [\d.]+ trials/min, ", line), line
    # The summary: `key: value` lines, no box drawing.
    assert not set(done.stderr) & set("│┃━─┏┡└╭")
    assert "this worker ran: 3" in lines and any(x.startswith("best params: ") for x in lines)
    assert lines[-1].startswith("next: hpo export --study tiny --storage sqlite:///")
    assert str(deep) in lines[-1]


def test_help_names_what_is_required_and_summaries_are_whole(run_cli: CliRun) -> None:
    code, out, _ = run_cli("run", "--help")
    assert code == 0
    assert "One of --n-trials or --timeout is required" in " ".join(out.split())
    for args in [(), ("studies",), ("data",)]:
        code, out, _ = run_cli(*args, "--help")
        assert code == 0
        commands = out.split("Commands:", 1)[1].strip().splitlines()
        assert commands and all(not line.rstrip().endswith("...") for line in commands), out
