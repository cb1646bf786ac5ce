"""deploy/slurm/hpo-array.sbatch on a real one-node Slurm cluster (``bash .ci/slurm.sh``).

Every array task is a worker of one PostgreSQL study; a task stopped mid-trial (``scancel
--signal=TERM``, a plain ``scancel``, ``scontrol requeue``) leaves its trial FAIL with the
reason and re-queued with the same parameters, the others run it, and the study-wide total
stays exact.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

import hpo
from hpo.cli import cli
from hpo.study import DISCARDED_ATTR, FINISHED, open_storage
from hpo.testing.postgres import PostgresServer
from hpo.testing.slurm import ArrayTask, job_of_pid, require_slurm, submit, wait_for_array
from hpo.testing.studies import write_tiny_study

REPO = Path(hpo.__file__).resolve().parents[1]
SCRIPT = REPO / "deploy" / "slurm" / "hpo-array.sbatch"


@dataclass(frozen=True)
class Array:
    """What a test submits: the study file, its storage and the folder the jobs run in."""

    study_file: Path
    url: str
    folder: Path
    env: dict[str, str]

    def submit(self, tasks: int, n_trials: int, extra: tuple[str, ...] = ()) -> str:
        return submit(
            SCRIPT,
            "tiny",
            str(n_trials),
            "--config",
            str(self.study_file),
            *extra,
            # One CPU each: three tasks side by side on the test cluster's node.
            options=[f"--array=0-{tasks - 1}", "--cpus-per-task=1", "--job-name=hpo-test"],
            env=self.env,
            cwd=self.folder,
        )

    def study(self) -> optuna.Study:
        storage = open_storage(self.url, heartbeat_interval=None)
        return optuna.load_study(study_name="tiny", storage=storage)

    def log(self, array_id: str, task: int) -> str:
        path = self.folder / f"hpo-{array_id}_{task}.out"
        return path.read_text() if path.exists() else ""

    def logs(self, array_id: str, tasks: list[ArrayTask]) -> str:
        return "\n".join(f"--- task {t}:\n{self.log(array_id, t.task)}" for t in tasks)


@pytest.fixture
def array(postgres_server: PostgresServer, demo_data: Path, tmp_path: Path) -> Iterator[Array]:
    require_slurm()
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = postgres_server.create_database(name)
    # A worker that did not get to fail its trial is found out within seconds.
    study_file = write_tiny_study(
        tmp_path, demo_data, epochs=2, heartbeat_interval=2, db_outage_seconds=5
    )
    pythonpath = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {
        **os.environ,
        # The jobs import this checkout, and find the study only through the environment.
        "PYTHONPATH": pythonpath,
        "HPO_STORAGE": url,
        "HPO_CACHE_DIR": str(tmp_path / "cache"),
        "OMP_NUM_THREADS": "1",
    }
    yield Array(study_file, url, tmp_path, env)
    postgres_server.drop_database(name)


def assert_exact(study: optuna.Study, n_trials: int) -> None:
    assert len(study.get_trials(states=FINISHED)) == n_trials
    assert not study.get_trials(states=(TrialState.RUNNING, TrialState.WAITING))


@pytest.mark.slurm
@pytest.mark.postgres
@pytest.mark.slow
def test_an_array_of_three_workers_finishes_the_exact_total(array: Array) -> None:
    array_id = array.submit(tasks=3, n_trials=5)
    tasks = wait_for_array(array_id, 3, timeout=240)
    logs = array.logs(array_id, tasks)
    assert [(t.state, t.exit_code) for t in tasks] == [("COMPLETED", 0)] * 3, logs
    assert_exact(array.study(), 5)
    for task in tasks:
        log = array.log(array_id, task.task)
        assert f"task {task.task}, restart 0)" in log and "devices none" in log, logs
        assert "Traceback" not in log, logs


def running_trial(array: Array, array_id: str) -> tuple[FrozenTrial, str]:
    """A trial that a worker of the array runs right now, and that worker's job id."""
    deadline = time.monotonic() + 180
    study: optuna.Study | None = None
    while time.monotonic() < deadline:
        time.sleep(0.5)
        try:
            study = study or array.study()
            running = study.get_trials(states=(TrialState.RUNNING,))
        except Exception:  # the study does not exist yet
            continue
        for trial in running:
            # At most half of its 40 epochs done: seconds from its end, time for the stop to
            # land. (A narrower window is missed between two polls on a loaded machine.)
            if "worker" in trial.user_attrs and len(trial.intermediate_values) <= 20:
                job = job_of_pid(int(trial.user_attrs["worker"]["pid"]))
                if job is not None:
                    return trial, job
    subprocess.run(["scancel", array_id], check=False)
    pytest.fail("no running trial of the array seen in 180 s")


def release(job: str) -> None:
    """Start a requeued job now: Slurm holds it back for a while (BeginTime) after a requeue."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["squeue", "--noheader", "--format=%T", "--jobs", job],
            capture_output=True,
            text=True,
        ).stdout.strip()
        if state == "PENDING":
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True)
            return
        time.sleep(0.5)
    pytest.fail(f"requeued job {job} never went back to PENDING")


@pytest.mark.slurm
@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop", "state", "workers"),
    [
        (["scancel", "--signal=TERM"], ("FAILED", 143), 0),  # signals the job step: hpo alone
        # SIGTERM to every process, SIGKILL after KillWait; the exit code recorded depends on
        # whether the batch shell ended before the SIGKILL.
        (["scancel"], ("CANCELLED", None), 0),
        (["scontrol", "requeue"], ("COMPLETED", 0), 0),  # stopped like scancel, run again
        # Supervised worker processes, what --devices all starts on a GPU node: their parent
        # forwards the SIGTERM, and Slurm signals the processes of the step too.
        (["scancel"], ("CANCELLED", None), 2),
    ],
    ids=["scancel-TERM", "scancel", "requeue", "scancel-supervised"],
)
def test_a_task_stopped_mid_trial_leaves_it_failed_and_retried(
    array: Array, stop: list[str], state: tuple[str, int | None], workers: int
) -> None:
    # Trials of 40 epochs: a stop lands in the middle of one.
    array.study_file.write_text(array.study_file.read_text().replace("epochs: 2", "epochs: 40"))
    count = 2 if workers else 3
    extra = ("--workers", str(workers)) if workers else ()
    array_id = array.submit(tasks=count, n_trials=4, extra=extra)
    victim, job = running_trial(array, array_id)
    subprocess.run([*stop, job], check=True, timeout=30)
    if stop[0] == "scontrol":
        release(job)
    tasks = wait_for_array(array_id, count, timeout=300)
    logs = array.logs(array_id, tasks)
    [stopped] = [t for t in tasks if t.job_id == job]
    code = stopped.exit_code if state[1] is not None else None
    assert (stopped.state, code) == state, logs
    assert stopped.restarts == (1 if stop[0] == "scontrol" else 0), logs
    assert all((t.state, t.exit_code) == ("COMPLETED", 0) for t in tasks if t is not stopped)
    # hpo itself got the SIGTERM and stopped cleanly, well before any SIGKILL.
    assert "stopped by SIGTERM" in array.log(array_id, stopped.task), logs

    study = array.study()
    assert_exact(study, 4)
    failed = study.trials[victim.number]
    assert failed.state == TrialState.FAIL
    assert failed.user_attrs["fail_reason"] == "interrupted (SIGTERM)"
    [retried] = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retried.params == failed.params
    assert retried.state in FINISHED
    # Every other failed trial was given up in a race for the last slot (never run), or
    # interrupted in the same task (a supervised sibling) and retried the same way.
    for trial in study.get_trials(states=(TrialState.FAIL,)):
        if DISCARDED_ATTR in trial.user_attrs:
            continue
        assert trial.user_attrs["fail_reason"] == "interrupted (SIGTERM)", logs
        copies = [t for t in study.trials if t.system_attrs.get("failed_trial") == trial.number]
        assert [(t.params, t.state in FINISHED) for t in copies] == [(trial.params, True)]


# -- the script's command line, without Slurm ---------------------------------------------------


def script_command(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """The command the script hands to srun, with an ``srun`` that only writes it down."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/argv\n')
    srun.chmod(0o755)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "HPO_"))}
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**clean, "PATH": path, "HPO_CACHE_DIR": str(tmp_path / "cache"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    argv = (tmp_path / "argv").read_text().splitlines()
    return argv[argv.index("hpo") + 1 :]


@pytest.mark.parametrize(
    ("gpus", "devices"), [("4", ["--devices", "all", "--restart-dead"]), ("0", [])]
)
def test_the_script_runs_one_worker_per_gpu_given_or_one_on_a_cpu_node(
    tmp_path: Path, gpus: str, devices: list[str]
) -> None:
    argv = script_command(
        tmp_path, "mask-clf-gpu", "50", "--timeout", "3600", SLURM_GPUS_ON_NODE=gpus,
        HPO_DATA_ROOT="/shared/mask", HPO_STORAGE="postgresql://hpo:pw@db/hpo",
    )  # fmt: skip
    expected = ["run", "--study", "mask-clf-gpu", "--n-trials", "50", "--quiet"]
    expected += ["--set", "data.root=/shared/mask", *devices, "--timeout", "3600"]
    assert argv == expected
    # The real command accepts it; the storage URL never shows on the command line.
    group = click.Context(cli, info_name="hpo")
    name, command, rest = cli.resolve_command(group, argv)
    assert name == "run" and command is not None
    command.make_context(name, rest, parent=group)
    assert not any("postgresql" in a for a in argv)


def test_the_script_refuses_to_start_without_a_study_and_a_total(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(SCRIPT), "mask-clf-gpu"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("usage: sbatch")
