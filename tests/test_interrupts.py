"""Stop requests wait for the storage call under way, then stop the process; none is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpo.cli._signals import stop_on_signals
from hpo.exceptions import Interrupted
from hpo.interrupts import (
    finishing,
    held,
    raise_if_stopped,
    request_stop,
    reset,
    stop_requested,
)
from hpo.study import read_trial_record


@pytest.fixture(autouse=True)
def _no_stop_left() -> Iterator[None]:
    reset()  # an objective run by an earlier test may have left its trial "finishing"
    yield
    reset()  # a stop requested here must not stop a later test's trials


def test_a_stop_outside_a_held_block_raises_at_once() -> None:
    with pytest.raises(Interrupted) as info:
        request_stop(signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM


def test_a_stop_inside_a_held_block_waits_for_its_end() -> None:
    done = []
    with pytest.raises(Interrupted) as info, held():
        with held():  # nested storage calls: raised only when the outer one ends
            request_stop(signal.SIGINT)
            done.append("inner")
        done.append("outer")
    assert done == ["inner", "outer"]  # the call ran to its end
    assert info.value.signum == signal.SIGINT
    with held():  # nothing left pending
        pass


def test_a_stop_while_a_finished_trial_is_recorded_waits_for_the_safe_point() -> None:
    finishing()
    request_stop(signal.SIGTERM)  # recorded, not raised: the trial is told first
    with held():  # its storage writes run to their end and raise nothing
        pass
    with pytest.raises(Interrupted) as info:
        raise_if_stopped()  # the worker loop, once the trial was told
    assert info.value.signum == signal.SIGTERM


def test_a_second_stop_does_not_wait_for_the_finished_trial() -> None:
    finishing()
    request_stop(signal.SIGINT)
    with pytest.raises(Interrupted):
        request_stop(signal.SIGINT, now=True)


def test_a_stop_swallowed_in_a_finalizer_is_raised_at_the_next_safe_point(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    swallowed: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", swallowed.append)

    class Thing:
        pass

    def deliver() -> None:
        signal.raise_signal(signal.SIGINT)  # the handler runs (and raises) in here

    with stop_on_signals():
        thing = Thing()
        weakref.finalize(thing, deliver)
        del thing  # the finalizer runs now; Python prints "Exception ignored in" and goes on
        assert [type(s.exc_value) for s in swallowed] == [Interrupted]
        assert stop_requested() == signal.SIGINT
        with pytest.raises(Interrupted) as info:
            raise_if_stopped()
    assert info.value.signum == signal.SIGINT


def test_a_worker_whose_stop_was_swallowed_stops_at_the_next_epoch(
    tmp_path: Path, demo_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hpo.workers import WorkerRequest
    from tests.cli.test_run import write_study

    swallowed: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", swallowed.append)
    study_file = write_study(tmp_path, demo_data, epochs=3, pruner={"name": "none"})
    session = WorkerRequest("tiny", config=study_file, device="cpu", n_trials=2).open_session()
    epochs: list[int] = []

    class Thing:
        pass

    def on_event(event: dict[str, Any]) -> None:
        if event["event"] != "epoch":
            return
        epochs.append(event["epoch"])
        if len(epochs) == 1:  # a SIGINT lands in a weakref callback after the first epoch
            thing = Thing()
            weakref.finalize(thing, signal.raise_signal, signal.SIGINT)
            del thing

    session.objective.on_event = on_event
    with pytest.raises(Interrupted), stop_on_signals():
        session.run(n_trials=2)
    assert [type(s.exc_value) for s in swallowed] == [Interrupted]
    assert epochs == [1]  # stopped at the next epoch's end, not after its trials
    trial = session.study.trials[0]  # (a copy of it may wait to be run again)
    assert all(t.state != TrialState.RUNNING for t in session.study.trials)
    assert trial.state == TrialState.FAIL
    assert read_trial_record(trial).fail_reason == "interrupted (Ctrl-C)"


# -- real processes ------------------------------------------------------------------------------


def _python(script: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_a_second_signal_stops_a_process_that_ignores_the_first(tmp_path: Path) -> None:
    process = _python(
        """
        import time
        from hpo.cli._signals import stop_on_signals
        from hpo.exceptions import Interrupted

        with stop_on_signals():
            ready, ignored, told = False, 0, 0
            while True:  # swallows every Interrupted, as a lost raise would
                try:  # the prints inside the try: a signal during one is swallowed too
                    if not ready:  # marked first: a signal after the print never repeats it
                        ready = True
                        print("ready")
                    if told < ignored:
                        told = ignored
                        print("ignored")
                    time.sleep(0.05)
                except Interrupted:
                    ignored += 1
        """,
        tmp_path,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        assert process.stdout.readline() == "ignored\n"
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGINT, err  # ended by the signal's default action
    assert "SIGINT again: stopping now" in err


@pytest.mark.parametrize(
    "where",
    [
        # after the last fold, still inside the cross-validation runner
        "hpo.objective.cross_validate",
        # right after the fold scores were recorded
        "hpo.objective.record_result",
        # while the finished trial's pictures and notes are published
        "hpo.publish.upload_trial_artifacts",
    ],
)
def test_a_stop_after_the_last_fold_keeps_the_trial(
    tmp_path: Path, demo_data: Path, where: str
) -> None:
    from tests.cli.test_run import write_study

    study_file = write_study(tmp_path, demo_data, epochs=1, folds=2, pruner={"name": "none"})
    module, name = where.rsplit(".", 1)
    process = _python(
        f"""
        import os, signal, sys
        import {module} as module

        original = module.{name}

        def then_a_signal(*args, **kwargs):
            result = original(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)  # lands right after the call returns
            return result

        module.{name} = then_a_signal
        from hpo.cli import main

        sys.exit(main(["run", "--study", "tiny", "--config", {str(study_file)!r},
                       "--n-trials", "3", "--quiet", "--device", "cpu"]))
        """,
        tmp_path,
    )
    _, err = process.communicate(timeout=300)
    assert process.returncode == 128 + signal.SIGTERM, err
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tmp_path / 'tiny.db'}")
    (trial,) = study.trials  # stopped after the trial, before another
    record = read_trial_record(trial)
    assert trial.state == TrialState.COMPLETE, (trial.state, record.fail_reason, err)
    assert trial.value is not None and record.fold_scores is not None
    assert len(record.fold_scores) == 2
