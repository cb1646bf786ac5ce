"""Shared test fixtures: tests run on CPU with tiny models and tiny data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hpo.testing.pictures import PicturesStudy, run_pictures_study
from hpo.testing.postgres import PostgresServer, require_postgres_bindir
from hpo.testing.postgres import postgres_server as _postgres_server

# Tests run on the CPU: GPUs are hidden unless HPO_TEST_CUDA=1 keeps them visible, so that
# `HPO_TEST_CUDA=1 pytest` on a GPU machine runs the CUDA tests too (they skip without one).
if os.environ.get("HPO_TEST_CUDA", "") != "1":
    os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the decoded-image cache and HPO_STORAGE of the user out of tests."""
    monkeypatch.setenv("HPO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "hpo-cache"))
    monkeypatch.delenv("HPO_STORAGE", raising=False)


# ---------------------------------------------------------------------------------------------
# Storages: one parametrized fixture over SQLite and a real PostgreSQL server the tests start.


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session (skips if none is installed)."""
    bindir = require_postgres_bindir()
    with _postgres_server(bindir=bindir) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """``postgresql://hpo:secret@127.0.0.1:PORT/hpo`` of the session's server."""
    return postgres_server.url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty storage URL per test: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'studies.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = server.create_database(name)
    yield url
    server.drop_database(name)


# ---------------------------------------------------------------------------------------------
# Data: a tiny demo data set in the real competition layout, made once per session.


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """DATA root of a 24-person demo set (train/ and eval/ with answers.csv)."""
    from hpo.demo import make_demo_data

    return make_demo_data(tmp_path_factory.mktemp("demo") / "mask", profiles=24, seed=0)


# ---------------------------------------------------------------------------------------------
# The command line, in-process through the real entry point.


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``hpo ARGS`` through ``hpo.cli.main``: returns (exit code, stdout, stderr)."""
    from hpo.cli import main

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            result = main([str(a) for a in args])
            code = result if isinstance(result, int) else 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


# ---------------------------------------------------------------------------------------------
# One real tiny study with artifacts, notes and TensorBoard runs, shared by the picture tests.


@pytest.fixture(scope="session")
def pictures_study(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> PicturesStudy:
    """``hpo run`` of a tiny 5-trial study (2 folds x 2 epochs) with pruned trials."""
    return run_pictures_study(tmp_path_factory.mktemp("pictures"), demo_data)
