"""The pictures helpers: where screenshots are kept and where the tiny study's files lie."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.testing.pictures import SCREENSHOTS, PicturesStudy, keep_screenshot


def test_screenshots_are_kept_under_the_root_or_the_named_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"png")
    monkeypatch.delenv("HPO_SCREENSHOT_DIR", raising=False)
    kept = keep_screenshot(shot, tmp_path / "repo")
    assert kept == tmp_path / "repo" / SCREENSHOTS / "shot.png" and kept.read_bytes() == b"png"
    monkeypatch.setenv("HPO_SCREENSHOT_DIR", str(tmp_path / "elsewhere"))
    assert keep_screenshot(shot, tmp_path / "repo") == tmp_path / "elsewhere" / "shot.png"


def test_the_pictures_study_lies_under_its_root(tmp_path: Path) -> None:
    study = PicturesStudy(tmp_path)
    assert study.study_file == tmp_path / "studies" / "pictures.yaml"
    assert study.storage_url == f"sqlite:///{tmp_path / 'studies' / 'pictures.db'}"
    assert study.artifacts == tmp_path / "studies" / "pictures.artifacts"
    assert study.tensorboard == tmp_path / "tensorboard"
    assert not study.data.is_absolute(), "the study file names its data relative to the root"
