"""``hpo run --workers/--devices``: supervised worker processes; SIGINT and SIGTERM everywhere."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from hpo.cli._supervised import PLAN_FLAGS
from hpo.study import DISCARDED_ATTR, FINISHED
from hpo.testing.studies import tiny_study
from hpo.workers import PlanError, plan_workers

CliRun = Callable[..., tuple[int, str, str]]


def write_study(
    tmp_path: Path,
    demo_data: Path,
    *,
    epochs: int,
    lr: tuple[float, float] = (1.0e-4, 1.0e-1),
    **study: Any,
) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(
        tiny_study(
            demo_data,
            study={
                "sampler": {"name": "random", "seed": 0},
                "pruner": {"name": "none"},
                "storage": f"sqlite:///{tmp_path / 'tiny.db'}",
                **study,
            },
            search_space={"train.optimizer.lr": {"float": list(lr), "log": True}},
            epochs=epochs,
        )
    )
    return path


def decoded(cache: Path) -> list[Path]:
    """The decoded-image caches written under ``cache``."""
    return sorted(cache.rglob("*.npy")) if cache.exists() else []


def load(tmp_path: Path) -> optuna.Study:
    return optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")


def ignore_sigint() -> None:
    # What a non-interactive shell does to a job started with `&` (or nohup ... &).
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_hpo(study_file: Path, n_trials: int, *extra: str) -> subprocess.Popen[bytes]:
    """``hpo run`` of the tiny study in the background, started with SIGINT ignored."""
    args = ["run", "--study", "tiny", "--config", str(study_file), "--n-trials", str(n_trials)]
    return subprocess.Popen(
        [sys.executable, "-m", "hpo", *args, "--quiet", *extra],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        preexec_fn=ignore_sigint,
    )


def wait_for_running(
    tmp_path: Path, process: subprocess.Popen[bytes], count: int
) -> list[FrozenTrial]:
    """Wait until ``count`` trials are RUNNING (and have recorded their worker)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        try:
            running = load(tmp_path).get_trials(states=(TrialState.RUNNING,))
        except (KeyError, Exception):  # the study or its tables do not exist yet
            continue
        if len(running) >= count and all("worker" in t.user_attrs for t in running):
            return running
    process.kill()
    out = process.communicate()[0].decode()
    pytest.fail(f"{count} running trial(s) never seen:\n{out}")


def assert_nothing_running(study: optuna.Study) -> None:
    assert not study.get_trials(states=(TrialState.RUNNING,))


# -- planning and flags ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("devices", "count", "expected"),
    [
        ("cuda:7", 4, "--devices 'cuda:7': no device cuda:7 (available: cuda:0..cuda:3)"),
        ("cuda:1", 1, "(available: cuda:0)"),
        ("gpu0", 2, "expected all or cuda:K[,cuda:K...], got 'gpu0' (available: cuda:0..cuda:1)"),
        ("cuda:0,cuda:0", 2, "cuda:0 listed twice; use --workers-per-device"),
        ("all", 0, "no CUDA devices on this machine; for CPU workers use --workers N"),
    ],
)
def test_plan_refuses_devices_naming_what_is_available(
    devices: str, count: int, expected: str
) -> None:
    # The plan names its settings; `hpo run` says them as its flags.
    with pytest.raises(PlanError) as info:
        plan_workers(devices=devices, workers_per_device=None, workers=None, cuda_count=count)
    assert expected in info.value.render(PLAN_FLAGS)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--devices", "cuda:7"), "--devices 'cuda:7': no device cuda:7 (no CUDA devices on"),
        (("--devices", "gpu0"), "got 'gpu0' (no CUDA devices on this machine"),
        (("--workers-per-device", "2"), "--workers-per-device needs --devices"),
        (("--workers", "0"), "--workers must be at least 1"),
        (("--workers", "2", "--devices", "all"), "with --devices use --workers-per-device"),
        (
            ("--workers", "500"),
            "--workers 500: 500 worker processes but this machine has",
        ),
        (("--workers", "2", "--timeout", "-5"), "--timeout must be a number of seconds above 0"),
    ],
)
def test_bad_worker_flags_are_one_error_line(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, flags: tuple[str, ...], expected: str
) -> None:
    # Tests see no GPU (CUDA_VISIBLE_DEVICES is empty), like a CPU-only machine.
    study_file = write_study(tmp_path, demo_data, epochs=1)
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "2", *flags
    )
    assert code == 2
    assert err.startswith("error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "tiny.db").exists()


# -- supervised workers ------------------------------------------------------------------------


@pytest.mark.slow
def test_two_cpu_workers_finish_the_exact_total_side_by_side(
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level("INFO", logger="hpo")
    cache = tmp_path / "cache"  # cold: whoever decodes says so
    monkeypatch.setenv("HPO_CACHE_DIR", str(cache))
    study_file = write_study(tmp_path, demo_data, epochs=6)
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "4", "--workers", "2",
        "--quiet",
    )  # fmt: skip
    assert code == 0, err
    study = load(tmp_path)
    trials = [t for t in study.trials if DISCARDED_ATTR not in t.user_attrs]
    assert len(study.get_trials(states=FINISHED)) == 4
    assert_nothing_running(study)
    # Every trial says which worker ran it; both workers ran trials, at the same time.
    by_pid: dict[int, list[FrozenTrial]] = {}
    for trial in trials:
        worker = trial.user_attrs["worker"]
        assert worker["device"] == "cpu" and worker["host"]
        by_pid.setdefault(worker["pid"], []).append(trial)
    assert len(by_pid) == 2 and os.getpid() not in by_pid
    first, second = by_pid.values()
    assert any(
        a.datetime_start < b.datetime_complete and b.datetime_start < a.datetime_complete
        for a in first
        for b in second
        if a.datetime_complete and b.datetime_complete and a.datetime_start and b.datetime_start
    )
    # Prefixed lines per worker, the trial line shows the worker.
    log = caplog.text
    assert "w1 cpu | started" in log and "w2 cpu | started" in log
    assert f":{first[0].user_attrs['worker']['pid']} cpu]" in log
    # The data decoded once, by the parent before any worker started; the workers mapped it.
    [decoding] = [line for line in log.splitlines() if "decoding 168 images" in line]
    assert not re.search(r"w\d+ cpu \|", decoding), decoding
    assert log.index("decoding 168 images") < log.index("w1 cpu | started")
    assert len(decoded(cache)) == 1


def test_supervisor_checks_before_it_decodes(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("HPO_CACHE_DIR", str(cache))
    study_file = write_study(tmp_path, demo_data, epochs=1)
    args = ("run", "--study", "tiny", "--config", study_file, "--quiet")
    code, _, err = run_cli(*args, "--n-trials", "1")  # one worker in the process
    assert code == 0, err
    for path in decoded(cache):
        path.unlink()

    # A full study: nothing decoded, no worker started, exit 0 (it holds its total).
    code, _, err = run_cli(*args, "--n-trials", "1", "--workers", "2")
    assert code == 0, err
    assert "already holds 1 of 1 finished trials: no worker started" in err
    assert "started (pid" not in err
    assert not decoded(cache)
    # A study file that differs from the stored one: refused before anything is decoded.
    code, _, err = run_cli(*args, "--n-trials", "3", "--workers", "2", "--set", "train.epochs=2")
    assert code == 2
    assert err.startswith("error: ") and "different study file" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not decoded(cache)
    assert len(load(tmp_path).trials) == 1


# -- the parent's exit code: did the study reach its total? -----------------------------------


def fake_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    """Worker processes run ``body`` (sh) instead of ``python -m hpo run ...``."""
    script = tmp_path / "fake-python"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(script))


def test_workers_that_die_leave_the_total_unreached_exit_1(
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    fake_worker(tmp_path, monkeypatch, "kill -KILL $$")
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "2", "--workers", "2",
        "--quiet",
    )  # fmt: skip
    assert code == 1, err
    assert (
        "error: the study did not reach its total (0 of 2 finished trials); workers: "
        "w1 killed by SIGKILL, w2 killed by SIGKILL"
    ) in caplog.text
    assert "restarting it" not in caplog.text


def test_a_worker_user_error_is_exit_2_with_its_error_line(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=1)
    fake_worker(
        tmp_path,
        monkeypatch,
        'echo "error: storage sqlite:///x unreachable for 120 s" >&2; exit 2',
    )
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "2", "--workers", "2",
        "--quiet", "--restart-dead",
    )  # fmt: skip
    assert code == 2, err
    # A user error is not a crash: never restarted; the parent's last line is the worker's.
    assert err.strip().splitlines()[-1] == (
        "error: w1: storage sqlite:///x unreachable for 120 s "
        "(w2 exited 2 too; the study holds 0 of 2 finished trials)"
    )


def test_workers_stopped_by_their_timeout_exit_0(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As one worker in the process: --timeout before --n-trials is not an error.
    study_file = write_study(tmp_path, demo_data, epochs=1)
    done = '{"event": "done", "ran": 0, "stopped_by": "timeout"}'
    fake_worker(tmp_path, monkeypatch, f"echo '{done}'")
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "2", "--timeout", "60",
        "--workers", "2", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "the study holds 0 of 2 finished trials: the workers stopped (timeout)" in err


def test_on_a_terminal_the_parent_shows_a_live_row_per_worker(
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Workers that report one finished trial, train another for a while, then die.
    events = [
        {"event": "trial_start", "trial": 7},
        {"event": "epoch", "trial": 7, "fold": 0, "epoch": 1, "f1": 0.25},
        {"event": "trial_end", "trial": 7, "state": "COMPLETE", "line": "trial   7  complete"},
        {"event": "trial_start", "trial": 8},
        {"event": "epoch", "trial": 8, "fold": 1, "epoch": 3, "f1": 0.4321},
    ]
    lines = "; ".join(f"echo '{json.dumps(e)}'" for e in events)
    fake_worker(tmp_path, monkeypatch, f"{lines}; sleep 1.5; kill -KILL $$")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr is a terminal, as far as rich knows
    monkeypatch.setenv("COLUMNS", "150")
    study_file = write_study(tmp_path, demo_data, epochs=1)
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "2", "--workers", "2"
    )  # fmt: skip
    assert code == 1, err
    screen = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line).rstrip() for line in err.splitlines()]
    # While they trained: worker, device, pid, trial, fold/epoch, val F1, done, status.
    for name in ("w1", "w2"):
        row = rf"{name} +cpu +\d+ +8 +2/3 +0\.4321 +1 +training"
        assert any(re.fullmatch(row, line) for line in screen), "\n".join(screen)
    # At the end: the dead workers' rows, then the study's progress bar below them.
    last = max(i for i, line in enumerate(screen) if line.startswith("worker "))
    assert re.fullmatch(r"w1 +cpu +\d+ +2/3 +0\.4321 +1 +killed by SIGKILL", screen[last + 1])
    assert re.fullmatch(r"w2 +cpu +\d+ +2/3 +0\.4321 +1 +killed by SIGKILL", screen[last + 2])
    assert screen[last + 3].startswith("trials") and "0/2 best -" in screen[last + 3]
    # Lines above the live view, prefixed by their worker; no log lines on a terminal.
    assert "w1 cpu | trial   7  complete" in screen and "w2 cpu | trial   7  complete" in screen
    assert not [r for r in caplog.records if r.getMessage().startswith("w1 cpu | started")]


@pytest.mark.slow
def test_workers_that_fail_every_trial_stop_with_their_error_exit_2(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    # Every trial's loss becomes NaN; each worker stops after one failed trial (exit 2).
    study_file = write_study(
        tmp_path, demo_data, epochs=1, lr=(1.0e6, 1.0e8), max_consecutive_failures=1
    )
    code, _, err = run_cli(
        "run", "--study", "tiny", "--config", study_file, "--n-trials", "2", "--workers", "2",
        "--quiet",
    )  # fmt: skip
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: w1: stopped after 1 failed trials in a row; last reason: TrainingError: loss "
        r"became nan .*\(w2 exited 2 too; the study holds 0 of 2 finished trials\)",
        last,
    ), err
    study = load(tmp_path)
    assert_nothing_running(study)
    assert {t.state for t in study.trials} == {TrialState.FAIL}


def kill_a_worker(tmp_path: Path, demo_data: Path, *extra: str) -> tuple[FrozenTrial, str]:
    """3 trials on 2 workers; SIGKILL the worker of a running trial; the study still finishes.

    Returns:
        The killed trial (FAIL, retried by a finished trial) and the parent's output.
    """
    study_file = write_study(tmp_path, demo_data, epochs=25)
    parent = start_hpo(study_file, 3, "--workers", "2", *extra)
    victim = wait_for_running(tmp_path, parent, 2)[0]
    os.kill(victim.user_attrs["worker"]["pid"], signal.SIGKILL)
    out = parent.communicate(timeout=280)[0].decode()
    assert parent.returncode == 0, out  # the study reached its total
    assert f"exited (killed by SIGKILL); its trial {victim.number} failed and re-queued" in out
    study = load(tmp_path)
    assert len(study.get_trials(states=FINISHED)) == 3
    assert_nothing_running(study)
    killed = study.trials[victim.number]
    assert killed.state == TrialState.FAIL
    assert "died (killed by SIGKILL)" in killed.user_attrs["fail_reason"]
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == victim.number]
    assert retried and retried[0].params == killed.params
    assert retried[0].state in FINISHED
    return killed, out


# The parent's line for each worker process it starts (hpo/cli/_live.py, WorkerView.handle).
STARTED = re.compile(
    r"(?P<name>w\d+) cpu \| started \(pid (?P<pid>\d+), cpu, \d+ thread\(s\)"
    r"(?:, restart (?P<restart>\d+))?\)"
)


@pytest.mark.slow
def test_a_killed_worker_is_reported_and_its_trial_retried(
    tmp_path: Path, demo_data: Path
) -> None:
    _, out = kill_a_worker(tmp_path, demo_data)
    # Without --restart-dead the other worker finishes the study alone.
    assert "restarting it" not in out
    assert len(STARTED.findall(out)) == 2


@pytest.mark.slow
def test_restart_dead_starts_a_killed_worker_again(tmp_path: Path, demo_data: Path) -> None:
    killed, out = kill_a_worker(tmp_path, demo_data, "--restart-dead")
    # pid -> (worker name, restart number) of every worker process the parent started.
    started = {int(m["pid"]): (m["name"], int(m["restart"] or 0)) for m in STARTED.finditer(out)}
    name, restart = started[killed.user_attrs["worker"]["pid"]]
    assert restart == 0, out
    exited = (
        f"{name} cpu | exited (killed by SIGKILL); its trial {killed.number} failed and "
        "re-queued; restarting it"
    )
    assert exited in out
    # Three processes ran: the two first workers and the killed one started again, once.
    assert len(started) == 3, out
    [again] = [pid for pid, (_, number) in started.items() if number]
    assert started[again] == (name, 1)
    assert out.index(exited) < out.index(f"started (pid {again},")
    # Every trial ran in one of those processes.
    assert {t.user_attrs["worker"]["pid"] for t in load(tmp_path).trials} <= started.keys()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "reason"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "interrupted (SIGTERM)")],
)
def test_a_signal_to_the_supervisor_fails_every_running_trial(
    tmp_path: Path, demo_data: Path, signum: int, code: int, reason: str
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=200)
    parent = start_hpo(study_file, 10, "--workers", "2")
    wait_for_running(tmp_path, parent, 2)
    parent.send_signal(signum)
    out = parent.communicate(timeout=120)[0].decode()
    assert parent.returncode == code, out
    assert "Traceback" not in out
    study = load(tmp_path)
    assert_nothing_running(study)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert len(failed) >= 2
    assert {t.user_attrs["fail_reason"] for t in failed} == {reason}


# -- one worker --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "code", "reason"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGTERM, 143, "interrupted (SIGTERM)")],
)
def test_a_signal_to_one_worker_started_in_the_background_fails_its_trial(
    tmp_path: Path, demo_data: Path, signum: int, code: int, reason: str
) -> None:
    study_file = write_study(tmp_path, demo_data, epochs=200)
    worker = start_hpo(study_file, 3)
    wait_for_running(tmp_path, worker, 1)
    worker.send_signal(signum)
    out = worker.communicate(timeout=60)[0].decode()
    assert worker.returncode == code, out
    assert "Traceback" not in out
    assert ("interrupted" if signum == signal.SIGINT else "stopped by SIGTERM") in out
    study = load(tmp_path)
    assert_nothing_running(study)
    failed = study.get_trials(states=(TrialState.FAIL,))
    assert [t.user_attrs["fail_reason"] for t in failed] == [reason]
