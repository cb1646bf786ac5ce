"""Shared test fixtures: tests run on CPU with tiny models and tiny data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Under pytest-xdist each test process gets its share of the cores as torch threads, and so do
# the hpo processes tests start (they inherit the environment): with every process at full
# threads the cores are oversubscribed and torch slows down many times over. Set before torch
# is imported.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _share = max(1, _cores() // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = str(_share)

from hpo.testing.pictures import PicturesStudy, run_pictures_study  # noqa: E402
from hpo.testing.postgres import PostgresServer, require_postgres_bindir  # noqa: E402
from hpo.testing.postgres import postgres_server as _postgres_server  # noqa: E402


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one test process per core, at most 4 (more only adds start-up and servers)."""
    return min(4, _cores())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Slow tests first, so parallel runs do not end on one; shared set-ups in one process.

    The Slurm tests share the one-node cluster and run one after another; the picture tests
    share one session study, made once in the process that runs them all.
    """
    for item in items:
        if item.get_closest_marker("slurm"):
            item.add_marker(pytest.mark.xdist_group("slurm"))
        elif "pictures_study" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("pictures"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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
