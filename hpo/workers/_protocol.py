"""What a worker process tells its supervisor: one typed message per event, one JSON line each.

The only module that knows the wire format. A child writes ``encode(message)`` lines on its
stdout; the supervisor reads every line with :func:`decode`, and a line that is no message
(a library's warning, a traceback) is passed on as the child's output.
"""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "Done",
    "Epoch",
    "Message",
    "Ready",
    "TrialEnd",
    "TrialStart",
    "Wait",
    "decode",
    "encode",
]


@dataclass(frozen=True)
class Ready:
    """The worker opened the study and is about to run trials.

    Attributes:
        host: Its host name.
        pid: Its process id.
        device: Where it trains (``cpu``, ``cuda:K``).
    """

    kind: ClassVar[str] = "ready"
    host: str
    pid: int
    device: str


@dataclass(frozen=True)
class TrialStart:
    """The worker started trial number ``trial``."""

    kind: ClassVar[str] = "trial_start"
    trial: int


@dataclass(frozen=True)
class Epoch:
    """An epoch of a trial ended.

    Attributes:
        trial: The trial's number.
        fold: The fold's 0-based index.
        epoch: The epoch, from 1.
        f1: Its validation macro-F1 (None where the fold has no validation images).
    """

    kind: ClassVar[str] = "epoch"
    trial: int
    fold: int
    epoch: int
    f1: float | None


@dataclass(frozen=True)
class TrialEnd:
    """The worker finished a trial (complete, pruned or failed).

    Attributes:
        trial: The trial's number.
        state: Its state's name (``COMPLETE``, ``PRUNED``, ``FAIL``).
        line: What the worker's front end says about it (Rich markup).
    """

    kind: ClassVar[str] = "trial_end"
    trial: int
    state: str
    line: str


@dataclass(frozen=True)
class Wait:
    """The study has no free slot: the worker waits for ``running`` trials of other workers."""

    kind: ClassVar[str] = "wait"
    running: int


@dataclass(frozen=True)
class Done:
    """The worker's loop ended.

    Attributes:
        ran: Trials it ran.
        stopped_by: Why (``n_trials``, ``timeout``, ``exhausted``, ``failures``).
    """

    kind: ClassVar[str] = "done"
    ran: int
    stopped_by: str


Message: TypeAlias = Ready | TrialStart | Epoch | TrialEnd | Wait | Done
"""Any message of a worker to its supervisor."""

_TYPES: dict[str, type[Message]] = {
    cls.kind: cls for cls in (Ready, TrialStart, Epoch, TrialEnd, Wait, Done)
}


def _field_types(cls: type[Message]) -> dict[str, tuple[Any, ...]]:
    """Each field of ``cls`` and the types its value may have (int, float, str, None)."""
    hints = typing.get_type_hints(cls)
    return {f.name: typing.get_args(hints[f.name]) or (hints[f.name],) for f in fields(cls)}


_FIELDS = {cls: _field_types(cls) for cls in _TYPES.values()}


def encode(message: Message) -> str:
    """One line of JSON (no newline): ``{"event": KIND, FIELD: VALUE, ...}``."""
    return json.dumps({"event": message.kind, **asdict(message)})


def decode(line: str) -> Message | None:
    """The message ``line`` carries, or None for a line that is none (the child's output)."""
    if not line.startswith("{"):
        return None
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    cls = _TYPES.get(str(data.get("event")))
    if cls is None:
        return None
    values: dict[str, Any] = {}
    for name, options in _FIELDS[cls].items():
        value = _checked(data.get(name), options)
        if value is _INVALID:
            return None
        values[name] = value
    return cls(**values)


_INVALID = object()


def _checked(value: Any, options: tuple[Any, ...]) -> Any:
    """``value`` as a field that takes the types ``options``, or ``_INVALID``."""
    if value is None:
        return None if type(None) in options else _INVALID
    if isinstance(value, bool):  # JSON true/false are never numbers here
        return _INVALID
    if int in options and isinstance(value, int):
        return value
    if float in options and isinstance(value, (int, float)):
        return float(value)
    if str in options and isinstance(value, str):
        return value
    return _INVALID
