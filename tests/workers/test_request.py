"""A worker's request: the command line of a child that runs it is the same request."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from hpo.cli.run import run as run_command
from hpo.workers import WorkerRequest


def parsed(argv: list[str]) -> WorkerRequest:
    """The request ``hpo run`` makes of a child's command line (``python -m hpo run ...``)."""
    assert argv[:4] == [sys.executable, "-m", "hpo", "run"]
    params = run_command.make_context("run", argv[4:]).params
    return WorkerRequest(
        params["name"],
        config=params["config"],
        overrides=params["overrides"],
        storage=params["storage"],
        device=params["device"],
        n_trials=params["n_trials"],
        timeout=params["timeout"],
        allow_mismatch=params["allow_mismatch"],
        threads=params["threads"],
    )


@pytest.mark.parametrize(
    "request_",
    [
        WorkerRequest("tiny"),
        WorkerRequest(
            "tiny",
            config=Path("/studies/other file.yaml"),
            overrides=("train.epochs=3", "data.image_size=[64, 48]", "train.epochs=4"),
            device="cuda:1",
            n_trials=12,
            timeout=30.5,
            allow_mismatch=True,
            threads=4,
        ),
    ],
)
def test_a_child_runs_the_same_request(request_: WorkerRequest) -> None:
    argv = request_.command(parent=4242)
    assert parsed(argv) == request_
    params = run_command.make_context("run", argv[4:]).params
    assert params["worker_of"] == 4242 and params["quiet"]


def test_the_storage_never_goes_on_the_command_line() -> None:
    # `ps` shows command lines: the supervisor hands the URL over in HPO_STORAGE instead.
    request = WorkerRequest("tiny", storage="postgresql://hpo:secret@db/hpo", n_trials=2)
    argv = request.command(parent=1)
    assert not [arg for arg in argv if "secret" in arg]
    assert parsed(argv).storage is None


def test_a_childs_command_line_leaves_the_warm_start_to_its_supervisor() -> None:
    request = WorkerRequest(
        "tiny", n_trials=4, warm_start="older", warm_start_storage="sqlite:///older.db"
    )
    argv = request.command(parent=1)
    assert not any(a.startswith("--warm-start") for a in argv)
    assert "older" not in " ".join(argv)
