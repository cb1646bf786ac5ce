"""``hpo run`` refuses before it decodes a single image, and blames the right place."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_run import TINY_SEARCH, load, run_tiny, write_study

CliRun = Callable[..., tuple[int, str, str]]


def _decoded(cache: Path) -> list[Path]:
    return list(cache.rglob("*.npy")) if cache.exists() else []


def test_refusals_and_finished_studies_decode_nothing(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HPO_CACHE_DIR", str(cache))
    study_file = write_study(tmp_path, demo_data, epochs=1)
    assert run_tiny(run_cli, study_file, 1)[0] == 0
    assert _decoded(cache)  # the first worker decoded its images
    for path in _decoded(cache):
        path.unlink()

    # A worker whose study file differs is refused before it decodes anything.
    code, _, err = run_tiny(run_cli, study_file, 2, "--set", "train.epochs=2")
    assert code == 2 and "different study file" in err
    assert not _decoded(cache)
    # A worker joining a study with nothing left to do decodes nothing either.
    code, _, err = run_tiny(run_cli, study_file, 1)
    assert code == 0, err
    assert not _decoded(cache)
    assert len(load(tmp_path).trials) == 1


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("train.kfold.n_splits=50", "train.kfold.n_splits (fixed value 50) is more than the 24"),
        ("data.image_size=[32]", "--set data.image_size=[32]: missing a value"),
        ("study.heartbeat=3", "--set study.heartbeat: unknown key 'study.heartbeat'; known keys"),
    ],
)
def test_bad_settings_are_refused_before_the_study_is_created(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, override: str, expected: str
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    code, _, err = run_tiny(run_cli, study_file, 2, "--set", override)
    assert code == 2, err
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tiny.db").exists()


def test_searched_n_splits_is_checked_at_its_largest_value(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    space = {**TINY_SEARCH, "train.kfold.n_splits": {"choice": [3, 40]}}
    study_file = write_study(tmp_path, demo_data, epochs=1, search_space=space)
    code, _, err = run_tiny(run_cli, study_file, 2)
    assert code == 2
    assert "search space's largest value 40" in err
    assert not (tmp_path / "tiny.db").exists()


def test_image_size_message_says_its_shape(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    _, _, err = run_tiny(run_cli, study_file, 1, "--set", "data.image_size=[32]")
    assert "[height, width]" in err
    assert str(study_file) not in err
