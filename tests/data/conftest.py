"""Fixtures of the data tests: one small demo data set per session, copies to break."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from hpo.demo import make_demo_data

DEMO_PROFILES = 24
DEMO_EVAL_IMAGES = 40


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo data set (24 people, all 18 classes, 40 eval images); never modify it."""
    root = tmp_path_factory.mktemp("demo") / "data"
    return make_demo_data(root, DEMO_PROFILES, seed=0, eval_images=DEMO_EVAL_IMAGES, workers=1)


@pytest.fixture
def data_copy(demo_root: Path, tmp_path: Path) -> Path:
    """A private copy of the demo data set that a test may break."""
    return Path(shutil.copytree(demo_root, tmp_path / "data"))


CliRun = Callable[..., tuple[int, str, str]]
