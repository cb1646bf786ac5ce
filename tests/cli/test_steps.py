"""The engine's step progress drawn by the CLI: one transient bar per pass, terminals only."""

from __future__ import annotations

import io

from rich.console import Console

from hpo.cli._steps import StepBars


def test_a_bar_per_pass_live_only_while_the_pass_runs() -> None:
    out = io.StringIO()
    bars = StepBars(Console(file=out, force_terminal=True, width=80))
    callback = bars.callback
    assert callback is bars
    callback("epoch 1/2", 0, 3)
    callback("epoch 1/2", 1, 3)
    assert bars._bar is not None and bars._bar.live.is_started
    callback("epoch 1/2", 3, 3)
    assert bars._bar is None  # between passes nothing is live: epoch lines print plainly
    callback("epoch 2/2", 0, 3)
    bars.close()  # a pass cut short by an error
    assert bars._bar is None
    text = out.getvalue()
    assert "epoch 1/2" in text and "epoch 2/2" in text


def test_no_bars_off_a_terminal() -> None:
    bars = StepBars(Console(file=io.StringIO(), force_terminal=False))
    assert bars.callback is None
