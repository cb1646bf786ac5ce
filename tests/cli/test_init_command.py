"""``hpo init`` end to end: a study file for real image folders that dry-runs and runs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from tests.test_init import make_images

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in ``tmp_path`` as a user works in a project folder (``studies/`` beside ``data/``)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_flat_folder_init_dry_run_and_one_trial(in_tmp: Path, run_cli: CliRun) -> None:
    make_images(in_tmp / "data" / "shapes", {"circle": 4, "square": 4, "triangle": 6})
    code, out, err = run_cli("init", "--data", "data/shapes")
    assert code == 0, err
    assert out.splitlines() == [
        "read data/shapes: layout folder (no train/train.csv), 14 images in 3 classes "
        "(smallest 4, largest 6), median image 24x32",
        "wrote studies/shapes.yaml: small_cnn, image_size [32, 40], 4-fold, classes about "
        "balanced",
        "next:",
        "  hpo data check data/shapes",
        "  hpo run --study shapes --dry-run",
        "  hpo run --study shapes --n-trials 30",
    ]
    code, out, err = run_cli("run", "--study", "shapes", "--dry-run")
    assert code == 0, err
    assert "data: 14 images of 14 people/groups in 3 classes (data/shapes)" in out
    code, out, err = run_cli(
        "run", "--study", "shapes", "--n-trials", "1", "--set", "train.epochs=1", "--quiet"
    )
    assert code == 0, err
    study = optuna.load_study(study_name="shapes", storage="sqlite:///studies/shapes.db")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    assert study.metric_names == ["validation macro-F1"]


def test_split_root_with_gpu_settings_dry_runs(in_tmp: Path, run_cli: CliRun) -> None:
    root = in_tmp / "data" / "pets"
    make_images(root / "train", {"cat": 3, "dog": 9})
    make_images(root / "eval", {"cat": 2, "dog": 2})
    code, out, err = run_cli("init", "--data", root, "--name", "pets-gpu", "--gpu")
    assert code == 0, err
    assert "12 images in 2 classes" in out  # train/ only: never classes named train and eval
    assert "wrote studies/pets-gpu.yaml: pretrained efficientnet_b0 / resnet18 / resnet34" in out
    assert "losses for imbalanced classes" in out
    assert "  hpo models download efficientnet_b0 resnet18 resnet34" in out
    code, out, err = run_cli("run", "--study", "pets-gpu", "--dry-run")
    assert code == 0, err
    assert "data: 12 images of 12 people/groups in 2 classes" in out


@pytest.mark.parametrize(
    ("setup", "args", "expected"),
    [
        ("one", ["--data", "data/one"], "error: data/one: class 'b' has 1 image; every class "),
        ("empty", ["--data", "data/empty"], "data/empty: found 0 class folder(s)"),
        ("", ["--data", "data/missing"], "error: data/missing: folder not found"),
        (
            "exists",
            ["--data", "data/ok"],
            "error: studies/ok.yaml exists: pass --force to overwrite it, or --name",
        ),
        ("", ["--data", "data", "--name", "../x"], "error: study name '../x' is not allowed"),
    ],
)
def test_refusals_exit_2_with_one_line_and_write_nothing(
    in_tmp: Path, run_cli: CliRun, setup: str, args: list[str], expected: str
) -> None:
    if setup == "one":
        make_images(in_tmp / "data" / "one", {"a": 3, "b": 1})
    elif setup == "empty":
        (in_tmp / "data" / "empty").mkdir(parents=True)
    elif setup == "exists":
        make_images(in_tmp / "data" / "ok", {"a": 2, "b": 2})
        (in_tmp / "studies").mkdir()
        (in_tmp / "studies" / "ok.yaml").write_text("mine\n")
    before = sorted(p.relative_to(in_tmp) for p in in_tmp.rglob("*"))
    code, out, err = run_cli("init", *args)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert expected in err
    assert err.count("\n") == 1
    assert sorted(p.relative_to(in_tmp) for p in in_tmp.rglob("*")) == before
    if setup == "exists":
        assert (in_tmp / "studies" / "ok.yaml").read_text() == "mine\n"
        code, out, err = run_cli("init", *args, "--force")
        assert code == 0, err
        assert (in_tmp / "studies" / "ok.yaml").read_text().startswith("# Study ok:")
