"""Shared test fixtures: tests run on CPU with tiny models and tiny data."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the decoded-image cache and HPO_STORAGE of the user out of tests."""
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hpo-cache"))
    monkeypatch.delenv("HPO_STORAGE", raising=False)
