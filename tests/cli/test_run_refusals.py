"""``hpo run`` refusals that used to write first: nothing about the study is stored before them."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_run import load, run_tiny, write_study

CliRun = Callable[..., tuple[int, str, str]]

# /proc takes no new folders, for root too (permission bits do not stop root).
READ_ONLY = "/proc/hpo-read-only"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--timeout", "-5"), "error: --timeout must be a number of seconds above 0, got -5"),
        (("--timeout", "nan"), "error: --timeout must be a number of seconds above 0, got nan"),
        (
            ("--set", f"study.artifacts={READ_ONLY}/artifacts"),
            f"error: study.artifacts: {READ_ONLY}/artifacts: cannot write in /proc",
        ),
        (
            ("--set", f"study.tensorboard={READ_ONLY}/tb"),
            f"error: study.tensorboard: {READ_ONLY}/tb: cannot write in /proc",
        ),
        (("--tensorboard", f"{READ_ONLY}/tb"), "error: study.tensorboard: "),
        # A wrong --set is blamed on the --set, not on the study file that does not hold it.
        (
            ("--set", "study.sampler.name=bogus"),
            "error: --set study.sampler.name=bogus: study.sampler: unknown sampler 'bogus'",
        ),
        (
            ("--set", "train.optimizer.name=bogus"),
            "error: --set train.optimizer.name=bogus: train.optimizer: unknown optimizer",
        ),
        (
            ("--set", "train.kfold.folds=9"),
            "error: --set train.kfold.folds=9: train.kfold: folds must be between 1 and",
        ),
        (
            ("--set", "study.sampler.seed=abc"),
            "error: --set study.sampler.seed=abc: study.sampler.seed: Input should be",
        ),
        (
            ("--set", "train.kfold.n_splits=50"),
            "error: --set train.kfold.n_splits=50: train.kfold.n_splits (fixed value 50)",
        ),
        (
            ("--set", "study.pruner={name: wilcoxon}"),
            'error: --set study.pruner={"name": "wilcoxon"}: study.pruner: wilcoxon with',
        ),
    ],
)
def test_refused_with_one_line_and_nothing_written(
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    extra: tuple[str, ...],
    expected: str,
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    code, _, err = run_tiny(run_cli, study_file, 1, *extra)
    assert code == 2, err
    assert err.startswith(expected), err
    assert len(err.strip().splitlines()) == 1
    assert str(study_file) not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_a_wrong_study_file_is_still_blamed_on_the_file(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    study_file.write_text(study_file.read_text().replace("name: sgd", "name: bogus"))
    code, _, err = run_tiny(run_cli, study_file, 1, "--set", "train.epochs=1")
    assert code == 2
    assert err.startswith(f"error: {study_file}: train.optimizer: unknown optimizer 'bogus'")


def test_study_artifacts_in_the_file_on_a_read_only_path(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    text = study_file.read_text().replace("study:\n", f"study:\n  artifacts: {READ_ONLY}/a\n", 1)
    study_file.write_text(text)
    code, _, err = run_tiny(run_cli, study_file, 1)
    assert code == 2 and err.startswith(f"error: study.artifacts: {READ_ONLY}/a: "), err
    assert not (tmp_path / "tiny.db").exists()


def test_a_corrupt_image_does_not_lock_the_study_to_it(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    data = Path(shutil.copytree(demo_data, tmp_path / "data"))
    (jpeg, *_) = sorted((data / "train" / "images").glob("*/mask1.jpg"))
    good = jpeg.read_bytes()
    jpeg.write_bytes(good[: len(good) // 2])  # a real JPEG, cut off
    study_file = write_study(tmp_path, data, epochs=1)

    code, _, err = run_tiny(run_cli, study_file, 1)
    assert code == 2 and "cannot decode image" in err and str(jpeg) in err, err
    assert not (tmp_path / "tiny.db").exists()  # nothing about the study stored

    jpeg.write_bytes(good)  # fixed: the same command runs
    code, _, err = run_tiny(run_cli, study_file, 1)
    assert code == 0, err
    assert len(load(tmp_path).trials) == 1


def test_a_corrupt_image_in_a_new_study_of_an_existing_database(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    """The database holds other studies: the new one is not created before its data is read."""
    import optuna

    optuna.create_study(study_name="other", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    data = Path(shutil.copytree(demo_data, tmp_path / "data"))
    (jpeg, *_) = sorted((data / "train" / "images").glob("*/normal.jpg"))
    good = jpeg.read_bytes()
    jpeg.write_bytes(good[: len(good) // 2])
    study_file = write_study(tmp_path, data, epochs=1)

    code, _, err = run_tiny(run_cli, study_file, 1)
    assert code == 2 and "cannot decode image" in err, err
    names = optuna.get_all_study_names(storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    assert names == ["other"]
    jpeg.write_bytes(good)
    assert run_tiny(run_cli, study_file, 1)[0] == 0
