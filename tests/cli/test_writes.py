"""Outputs that cannot be written (a /proc path, a file where a folder should be, a full disk):
one ``error:`` line, exit 2, and no partial or temporary file left."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from hpo.config import train_config_from_dict
from hpo.testing.disks import mounted_tmpfs

CliRun = Callable[..., tuple[int, str, str]]


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (root only), filled up: every write to it fails with ENOSPC."""
    with mounted_tmpfs(tmp_path / "full", "64k") as mount:
        with contextlib.suppress(OSError), (mount / "filler").open("wb") as f:
            while True:
                f.write(b"x" * 4096)
                f.flush()
        yield mount


def _targets(tmp_path: Path, full_disk: Path, name: str) -> list[tuple[Path, str]]:
    """Places ``name`` cannot be written to, each with the reason the line must give."""
    (tmp_path / "a-file").write_text("not a folder")
    return [
        (Path("/proc") / name, ""),
        (tmp_path / "a-file" / name, "Not a directory"),
        (full_disk / name, "No space left on device"),
    ]


def _assert_refused(code: int, err: str, target: Path, reason: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert code == 2, err
    assert len(errors) == 1 and lines[-1] == errors[0], err
    assert errors[0].startswith(f"error: cannot write {target}"), err
    assert reason in errors[0] and "Traceback" not in err
    assert not target.exists()
    folder = target.parent
    if folder.is_dir() and folder != Path("/proc"):  # nothing partial, no temporary file
        assert not [p for p in folder.iterdir() if p.name != "filler"], list(folder.iterdir())


@pytest.fixture
def storage(tmp_path: Path) -> str:
    """A study of two complete trials, each with the config it trained."""
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=url, study_name="demo", direction="maximize")
    for value, lr in ((0.4, 1e-3), (0.7, 3e-3)):
        config = train_config_from_dict(
            {
                "data": {"format": "mask", "root": "data/demo", "image_size": [32, 24]},
                "train": {
                    "model": {"name": "small_cnn", "width": 8},
                    "optimizer": {"name": "adamw", "lr": lr},
                },
            },
            "test",
        )
        study.add_trial(
            create_trial(
                params={"train.optimizer.lr": lr},
                distributions={"train.optimizer.lr": FloatDistribution(1e-5, 1e-1, log=True)},
                value=value,
                user_attrs={"config": config.to_dict(), "fold_scores": [value, value]},
            )
        )
    return url


def test_report(tmp_path: Path, full_disk: Path, storage: str, run_cli: CliRun) -> None:
    for target, reason in _targets(tmp_path, full_disk, "report.html"):
        code, _, err = run_cli("studies", "report", "demo", "--storage", storage, "--out", target)
        _assert_refused(code, err, target, reason)


def test_export(tmp_path: Path, full_disk: Path, storage: str, run_cli: CliRun) -> None:
    for target, reason in _targets(tmp_path, full_disk, "best.yaml"):
        code, _, err = run_cli("export", "--study", "demo", "--storage", storage, "--out", target)
        _assert_refused(code, err, target, reason)
    for target, reason in _targets(tmp_path, full_disk, "top"):
        code, _, err = run_cli(
            "export", "--study", "demo", "--storage", storage, "--top", 2, "--out", target
        )
        if reason == "No space left on device":  # the folder is made; its first file fails
            target = target / "demo-trial1.yaml"
        _assert_refused(code, err, target, reason)


def test_train_and_predict(
    tmp_path: Path, full_disk: Path, demo_data: Path, run_cli: CliRun
) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"format": "mask", "root": str(demo_data), "image_size": [32, 24]},
                "train": {
                    "model": {"name": "small_cnn", "width": 8},
                    "epochs": 1,
                    "batch_size": 32,
                    "kfold": {"n_splits": 3, "folds": 1},
                },
            }
        )
    )
    for target, reason in _targets(tmp_path, full_disk, "run"):
        code, _, err = run_cli("train", "--config", config, "--out", target, "--quiet")
        folder = target
        if reason == "No space left on device":  # the folder is made; its first file fails
            target = target / "config.yaml"
        _assert_refused(code, err, target, reason)
        if folder.is_dir():  # left empty: `hpo train --out` takes an empty folder
            folder.rmdir()

    run = tmp_path / "run"
    code, _, err = run_cli("train", "--config", config, "--out", run, "--quiet")
    assert code == 0, err
    for target, reason in _targets(tmp_path, full_disk, "submission.csv"):
        code, _, err = run_cli(
            "predict", "--run", run, "--data", demo_data, "--device", "cpu", "--out", target
        )
        _assert_refused(code, err, target, reason)
    assert os.listdir(full_disk) == ["filler"]


def test_init(tmp_path: Path, full_disk: Path, demo_data: Path) -> None:
    from hpo.exceptions import HPOError
    from hpo.scaffold import init_study

    (tmp_path / "a-file").write_text("not a folder")
    for studies, reason in ((tmp_path / "a-file", "Not a directory"), (full_disk, "No space")):
        with pytest.raises(HPOError) as info:
            init_study(demo_data, name="mine", studies_dir=studies)
        target = studies / "mine.yaml"
        assert str(info.value).startswith(f"cannot write {target}: {reason}")
        assert not target.exists()
    assert os.listdir(full_disk) == ["filler"]
