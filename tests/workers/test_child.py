"""A supervised worker's main loop, run in this process on the tiny demo study."""

from __future__ import annotations

import io
import os
import socket
from pathlib import Path
from typing import Any

import pytest
import torch

import hpo.workers._request
from hpo.exceptions import ConfigError
from hpo.testing.studies import tiny_study
from hpo.workers import (
    Done,
    Epoch,
    Message,
    Ready,
    TrialEnd,
    TrialStart,
    WorkerRequest,
    decode,
    run_child,
)


def write_study(tmp_path: Path, demo_data: Path, *, lr: list[float], **study: Any) -> Path:
    path = tmp_path / "tiny.yaml"
    settings = {
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "storage": f"sqlite:///{tmp_path / 'tiny.db'}",
        **study,
    }
    space = {"train.optimizer.lr": {"float": lr, "log": True}}
    path.write_text(tiny_study(demo_data, study=settings, search_space=space, epochs=2))
    return path


def messages(out: io.StringIO) -> list[Message]:
    lines = out.getvalue().splitlines()
    decoded = [decode(line) for line in lines]
    assert None not in decoded, lines  # nothing but messages on the child's stdout
    return [m for m in decoded if m is not None]


@pytest.fixture
def backends(monkeypatch: pytest.MonkeyPatch) -> list[torch.device]:
    """The devices ``configure_backends`` is called with (it still runs)."""
    calls: list[torch.device] = []
    real = hpo.workers._request.configure_backends

    def spy(device: torch.device, **kwargs: Any) -> None:
        calls.append(device)
        real(device, **kwargs)

    monkeypatch.setattr(hpo.workers._request, "configure_backends", spy)
    return calls


def test_the_child_tells_its_supervisor_each_step_and_nothing_else(
    tmp_path: Path, demo_data: Path, backends: list[torch.device]
) -> None:
    study_file = write_study(tmp_path, demo_data, lr=[1.0e-3, 1.0e-2])
    request = WorkerRequest("tiny", config=study_file, device="cpu", n_trials=2, threads=1)
    out = io.StringIO()
    threads = torch.get_num_threads()
    try:
        result = run_child(
            request, parent=os.getppid(), out=out, trial_line=lambda t: f"#{t.number}"
        )
        assert torch.get_num_threads() == 1  # the plan's share of the cores
    finally:
        torch.set_num_threads(threads)

    sent = messages(out)
    assert sent[0] == Ready(host=socket.gethostname(), pid=os.getpid(), device="cpu")
    assert sent[-1] == Done(ran=2, stopped_by="n_trials")
    assert result.ran == [0, 1]
    for number in (0, 1):
        start = sent.index(TrialStart(trial=number))
        end = sent.index(TrialEnd(trial=number, state="COMPLETE", line=f"#{number}"))
        epochs = sent[start + 1 : end]
        assert [(m.fold, m.epoch) for m in epochs if isinstance(m, Epoch)] == [(0, 1), (0, 2)]
        assert all(isinstance(m, Epoch) and m.trial == number for m in epochs)
    # The device's backend switches (cuDNN autotuning, TF32 on a GPU), set once per process.
    assert backends == [torch.device("cpu")]


def test_a_child_that_fails_every_trial_says_done_then_raises(
    tmp_path: Path, demo_data: Path, backends: list[torch.device]
) -> None:
    # The loss becomes NaN at every learning rate drawn.
    study_file = write_study(tmp_path, demo_data, lr=[1.0e6, 1.0e8], max_consecutive_failures=1)
    request = WorkerRequest("tiny", config=study_file, device="cpu", n_trials=2)
    out = io.StringIO()
    with pytest.raises(
        ConfigError, match=r"stopped after 1 failed trials in a row; last reason: "
    ):
        run_child(request, parent=os.getppid(), out=out, trial_line=lambda t: "")
    sent = messages(out)
    assert TrialEnd(trial=0, state="FAIL", line="") in sent
    assert sent[-1] == Done(ran=1, stopped_by="failures")
