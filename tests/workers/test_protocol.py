"""The worker -> supervisor messages: every type survives its one-line encoding."""

from __future__ import annotations

import json

import pytest

from hpo.workers import Done, Epoch, Message, Ready, TrialEnd, TrialStart, Wait, decode, encode

MESSAGES: list[Message] = [
    Ready(host="node-1", pid=4242, device="cuda:1"),
    TrialStart(trial=7),
    Epoch(trial=7, fold=1, epoch=3, f1=0.4321),
    Epoch(trial=7, fold=0, epoch=1, f1=None),
    TrialEnd(trial=7, state="PRUNED", line="trial   7  [yellow]pruned[/] \u00e9 | x"),
    Wait(running=2),
    Done(ran=3, stopped_by="timeout"),
]


def test_every_message_type_is_tested() -> None:
    assert {type(m) for m in MESSAGES} == {Ready, TrialStart, Epoch, TrialEnd, Wait, Done}


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    line = encode(message)
    assert "\n" not in line
    assert decode(line) == message


def test_the_wire_format_is_one_json_object_named_by_its_event() -> None:
    # What children wrote before the messages were typed, and what a test's fake worker writes.
    assert json.loads(encode(Epoch(trial=8, fold=1, epoch=3, f1=0.5))) == {
        "event": "epoch",
        "trial": 8,
        "fold": 1,
        "epoch": 3,
        "f1": 0.5,
    }
    assert decode('{"event": "done", "ran": 0, "stopped_by": "timeout"}') == Done(0, "timeout")
    assert decode('{"event": "trial_end", "trial": 7, "state": "COMPLETE", "line": "x"}') == (
        TrialEnd(trial=7, state="COMPLETE", line="x")
    )
    # A whole number where a float goes is that float.
    message = decode('{"event": "epoch", "trial": 1, "fold": 0, "epoch": 1, "f1": 1}')
    assert message == Epoch(trial=1, fold=0, epoch=1, f1=1.0)
    assert isinstance(message, Epoch) and isinstance(message.f1, float)


@pytest.mark.parametrize(
    "line",
    [
        "",
        "error: storage unreachable",
        "  warnings.warn(...)",
        "{not json",
        "[1, 2]",
        '{"trial": 3}',  # no event
        '{"event": "reboot"}',  # no such message
        '{"event": "trial_start"}',  # a field missing
        '{"event": "trial_start", "trial": "3"}',  # a field of the wrong type
        '{"event": "wait", "running": true}',
        '{"event": "done", "ran": 1, "stopped_by": null}',
    ],
)
def test_a_line_that_is_no_message_decodes_to_none(line: str) -> None:
    assert decode(line) is None
