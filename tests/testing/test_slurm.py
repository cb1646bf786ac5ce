"""The Slurm test helpers that need no cluster: finding one, skipping, a process's job."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpo.testing.slurm import ArrayTask, find_slurm, job_of_pid, require_slurm


@pytest.fixture
def no_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH holding no Slurm command."""
    monkeypatch.setenv("PATH", str(tmp_path))


def test_missing_commands_are_named(no_slurm: None) -> None:
    assert find_slurm() == (
        "Slurm commands not found: sbatch, squeue, scancel, scontrol, sinfo (Debian: slurm-wlm)"
    )


def test_no_cluster_skips_unless_ci_requires_one(
    no_slurm: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPO_REQUIRE_SLURM", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"bash \.ci/slurm\.sh"):
        require_slurm()
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("HPO_REQUIRE_SLURM", "1")
    with pytest.raises(pytest.fail.Exception, match="required: CI=true and HPO_REQUIRE_SLURM=1"):
        require_slurm()


@contextlib.contextmanager
def _sleeper(**env: str) -> Iterator[int]:
    """The pid of a process running with exactly ``env`` (and a PATH).

    Yielded once the program has started: until its exec, /proc shows the parent's environment.
    """
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
        env={"PATH": "/usr/bin", **env},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "up\n"
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_the_job_of_a_process_comes_from_its_environment() -> None:
    with _sleeper(SLURM_ARRAY_JOB_ID="12", SLURM_ARRAY_TASK_ID="3", SLURM_JOB_ID="15") as pid:
        assert job_of_pid(pid) == "12_3", "an array task is named ARRAY_TASK"
    with _sleeper(SLURM_JOB_ID="15") as pid:
        assert job_of_pid(pid) == "15"
    with _sleeper() as pid:
        assert job_of_pid(pid) is None


def test_a_task_has_ended_in_a_final_state() -> None:
    def task(state: str) -> ArrayTask:
        return ArrayTask(job_id="7_0", task=0, state=state, exit_code=0, restarts=0)

    assert task("COMPLETED").ended and task("CANCELLED").ended and task("FAILED").ended
    assert not task("RUNNING").ended and not task("PENDING").ended
