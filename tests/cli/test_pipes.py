"""Output into a pipe whose reader went away (``hpo ... | head``): a quiet exit, as other
commands make."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from hpo.cli import PIPE_CLOSED_EXIT
from hpo.testing.studies import tiny_study


def _into_a_closed_pipe(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``hpo ARGS`` with stdout a pipe whose reading end is closed before it writes.

    What ``hpo ... | head -1`` does once ``head`` has its line, without the race: the command
    takes seconds to start, and nobody reads by then.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "hpo", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.close()
    _, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, b"", err)


def test_a_dry_run_into_a_closed_pipe_exits_quietly(tmp_path: Path, demo_data: Path) -> None:
    study_file = tmp_path / "tiny.yaml"
    space = {"train.optimizer.lr": {"float": [0.01, 0.1]}}
    study_file.write_text(tiny_study(demo_data, study={}, search_space=space))
    done = _into_a_closed_pipe(
        "run", "--study", "tiny", "--config", str(study_file), "--dry-run", cwd=tmp_path
    )
    assert done.stderr == b""  # no traceback, no "Exception ignored", no error line
    assert done.returncode == PIPE_CLOSED_EXIT == 141  # 128 + SIGPIPE, as `git log | head`


@pytest.mark.parametrize("command", [["studies", "list"], ["studies", "show", "s"]])
def test_tables_into_a_closed_pipe_exit_quietly(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "studies").mkdir()
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/studies/s.db")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    done = _into_a_closed_pipe(*command, cwd=tmp_path)
    assert done.stderr == b""
    assert done.returncode == PIPE_CLOSED_EXIT
