"""A running Slurm cluster for tests: find it, submit jobs, follow their array tasks.

The tests use a real slurmctld and slurmd (``bash .ci/slurm.sh`` starts a one-node cluster on
this machine as root); nothing here starts or configures Slurm. Jobs run as the submitting user
with its environment (``--export=ALL``), so they import the code under test through
``PYTHONPATH`` and reach a PostgreSQL server the tests started on 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ArrayTask",
    "SlurmNotFound",
    "array_tasks",
    "find_slurm",
    "job_of_pid",
    "require_slurm",
    "submit",
    "wait_for_array",
]

_COMMANDS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")
_TIMEOUT = 30
# Array tasks in these states have ended (a requeued task goes back to PENDING).
_ENDED = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "TIMEOUT",
}


class SlurmNotFound(RuntimeError):
    """No Slurm commands, or no cluster answering them."""


def find_slurm() -> str | None:
    """None when a cluster answers with a usable node, else why not (one line)."""
    missing = [c for c in _COMMANDS if shutil.which(c) is None]
    if missing:
        return f"Slurm commands not found: {', '.join(missing)} (Debian: slurm-wlm)"
    try:
        out = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo did not answer: {exc}"
    if out.returncode != 0:
        line = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return f"no Slurm controller answers (sinfo: {line})"
    states = {s.rstrip("*~#!%$@^-") for s in out.stdout.split()}
    if not states & {"idle", "mixed", "allocated", "completing"}:
        return f"no Slurm node is up (states: {', '.join(sorted(states)) or 'none'})"
    return None


def require_slurm() -> None:
    """Skip the calling test when no Slurm cluster answers.

    On CI (``CI=true``) with ``HPO_REQUIRE_SLURM=1`` that fails the test instead, so a broken CI
    machine cannot turn the Slurm tests into silent skips.
    """
    import pytest

    problem = find_slurm()
    if problem is None:
        return
    reason = f"{problem}; as root, `bash .ci/slurm.sh` installs and starts a one-node cluster"
    required = os.environ.get("HPO_REQUIRE_SLURM") == "1"
    if os.environ.get("CI", "").lower() == "true" and required:
        pytest.fail(reason + " (required: CI=true and HPO_REQUIRE_SLURM=1)")
    pytest.skip(reason)


def submit(
    script: Path,
    *args: str,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path,
) -> str:
    """``sbatch --parsable --export=ALL OPTIONS SCRIPT ARGS`` from ``cwd``; the job id."""
    out = subprocess.run(
        ["sbatch", "--parsable", "--export=ALL", f"--chdir={cwd}", *options, str(script), *args],
        capture_output=True,
        text=True,
        env=dict(os.environ if env is None else env),
        cwd=cwd,
        timeout=_TIMEOUT,
    )
    if out.returncode != 0:
        raise SlurmNotFound(f"sbatch failed: {out.stderr.strip()}")
    return out.stdout.strip().split(";")[0]


@dataclass(frozen=True)
class ArrayTask:
    """One array task of a job as ``scontrol show job`` reports it.

    Attributes:
        job_id: ``ARRAY_TASK``, the spelling ``scancel`` and ``scontrol requeue`` take.
        task: Its array index.
        state: ``RUNNING``, ``COMPLETED``, ``FAILED``, ``CANCELLED``, ``PENDING``, ...
        exit_code: The batch script's exit code (``ExitCode=143:0`` gives 143).
        restarts: How often it was requeued.
    """

    job_id: str
    task: int
    state: str
    exit_code: int
    restarts: int

    @property
    def ended(self) -> bool:
        return self.state in _ENDED


def _field(line: str, name: str) -> str:
    match = re.search(rf"(?:^|\s){name}=(\S*)", line)
    return match.group(1) if match else ""


def array_tasks(array_id: str) -> list[ArrayTask]:
    """The tasks of array job ``array_id`` that have started or ended, by index.

    Finished jobs stay visible for the cluster's MinJobAge (300 s in the test cluster).
    """
    out = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", array_id],
        capture_output=True,
        text=True,
        timeout=_TIMEOUT,
    )
    tasks = []
    for line in out.stdout.splitlines():
        task = _field(line, "ArrayTaskId")
        if not task.isdigit():  # the pending remainder of the array, e.g. 3-7
            continue
        exit_code = _field(line, "ExitCode").split(":")[0]
        tasks.append(
            ArrayTask(
                job_id=f"{_field(line, 'ArrayJobId')}_{task}",
                task=int(task),
                state=_field(line, "JobState"),
                exit_code=int(exit_code) if exit_code.isdigit() else -1,
                restarts=int(_field(line, "Restarts") or 0),
            )
        )
    return sorted(tasks, key=lambda t: t.task)


def wait_for_array(array_id: str, count: int, *, timeout: float) -> list[ArrayTask]:
    """Wait until all ``count`` tasks of the array have ended; cancel it on timeout.

    Raises:
        TimeoutError: naming the tasks' states.
    """
    deadline = time.monotonic() + timeout
    tasks: list[ArrayTask] = []
    while time.monotonic() < deadline:
        tasks = array_tasks(array_id)
        if len(tasks) == count and all(t.ended for t in tasks):
            return tasks
        time.sleep(1)
    subprocess.run(["scancel", array_id], timeout=_TIMEOUT, check=False)
    states = ", ".join(f"{t.task}: {t.state}" for t in tasks) or "none seen"
    raise TimeoutError(f"array job {array_id} not done after {timeout:g} s ({states})")


def job_of_pid(pid: int) -> str | None:
    """The Slurm job a process of this machine runs in: ``ARRAY_TASK`` for an array task.

    That is the spelling ``scancel`` and ``scontrol`` take for a task (Slurm 22.05 refuses a
    task's own job id in ``scancel``: ``invalid JobId``).
    """
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    env = dict(entry.decode(errors="replace").partition("=")[::2] for entry in raw if entry)
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")
