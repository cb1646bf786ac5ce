"""Stop requests wait for the storage call under way, then stop the process."""

from __future__ import annotations

import signal

import pytest

from hpo.exceptions import Interrupted
from hpo.interrupts import held, request_stop


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
