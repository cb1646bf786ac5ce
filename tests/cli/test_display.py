"""Rendering of trials, parameters, tables and pace, on a terminal and in a log."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console

from hpo.cli._console import print_table
from hpo.cli._display import Pace, flow_yaml, format_params, format_trial, params_text
from hpo.cli._worker import busy_text, device_text

_PARAMS = {
    "train.optimizer.lr": 0.00275,
    "train.scheduler": "step",
    "train.scheduler[step].step_size": 2,
    "train.scheduler[step].gamma": 0.332,
    "train.loss": "cross_entropy",
    "data.image_size": "x",
}


def test_parameters_print_under_the_names_they_are_stored_under() -> None:
    # The names of the dashboard, the report, `hpo export`'s provenance and `--set`.
    assert params_text(_PARAMS) == (
        "train.optimizer.lr=0.00275 train.scheduler=step train.scheduler[step].step_size=2 "
        "train.scheduler[step].gamma=0.332 train.loss=cross_entropy data.image_size=x"
    )
    assert _rendered(format_params(_PARAMS)) == params_text(_PARAMS)  # Rich eats no "[step]"


def _rendered(markup: str) -> str:
    """What a console prints of ``markup`` (markup applied, no styles, no wrapping)."""
    console = Console(width=200, no_color=True, highlight=False, emoji=False)
    with console.capture() as captured:
        console.print(markup, soft_wrap=True)
    return captured.get().rstrip("\n")


def test_user_strings_survive_rich_markup() -> None:
    import optuna
    from optuna.trial import TrialState

    params = {"train.loss": "[bold]x", "train.model": ":smile:"}
    assert _rendered(format_params(params)) == "train.loss=[bold]x train.model=:smile:"
    trial = optuna.trial.create_trial(
        params={"train.loss": "focal", "train.loss[focal].gamma": 1.5},
        distributions={
            "train.loss": optuna.distributions.CategoricalDistribution(["focal", "[red]"]),
            "train.loss[focal].gamma": optuna.distributions.FloatDistribution(0.5, 2.0),
        },
        state=TrialState.FAIL,
        user_attrs={"fail_reason": "bad key [dim] in data/[x]/y.png"},
    )
    line = _rendered(format_trial(trial))
    assert "fail bad key [dim] in data/[x]/y.png" in line
    assert "train.loss=focal train.loss[focal].gamma=1.5" in line


def _printed(terminal: bool, **kwargs: object) -> str:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=100, no_color=True)
    print_table(console, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def test_a_table_is_boxed_on_a_terminal_and_plain_lines_in_a_log() -> None:
    table = {
        "rows": [["0", "wear [x]", "0.5000"], ["1", "not wear", "1.0000"]],
        "columns": ("class", "name", "F1"),
        "title": "scores",
        "note": "F1: per class",
    }
    boxed = _printed(True, **table)
    assert "┃" in boxed or "│" in boxed
    assert "wear [x]" in boxed and "F1: per class" in boxed
    assert _printed(False, **table).splitlines() == [
        "scores",
        "class\tname\tF1",
        "0\twear [x]\t0.5000",
        "1\tnot wear\t1.0000",
        "F1: per class",
    ]
    # Without columns: a key/value table, `key: value` lines in a log.
    pairs = {"rows": [["trials", "3 complete"], ["best params", "train.loss=focal"]]}
    assert _printed(False, **pairs).splitlines() == [
        "trials: 3 complete",
        "best params: train.loss=focal",
    ]


def test_pace_is_trials_per_minute_and_the_time_left() -> None:
    pace = Pace(50, None, start_count=10, started=0.0)
    assert pace.text(10, now=30.0) == "- trials/min"  # none finished since the run started
    # 4 trials in 2 minutes, 36 to go: 18 minutes.
    assert pace.text(14, now=120.0) == "2 trials/min, about 18 min left"
    assert pace.line(14, now=120.0) == "14/50 finished, 2 trials/min, about 18 min left"
    assert pace.text(50, now=600.0) == "4 trials/min, total reached"
    # A trial every 10 minutes (a busy machine, a big model), 19 to go.
    slow = Pace(20, None, start_count=0, started=0.0)
    assert slow.text(1, now=600.0) == "0.1 trials/min, about 3 h 10 min left"
    # A timeout ends the run sooner than the count would.
    timed = Pace(50, 600.0, start_count=0, started=0.0)
    assert timed.text(3, now=60.0) == "3 trials/min, about 9 min left"
    assert Pace(None, 600.0, start_count=0, started=0.0).text(0, now=590.0) == (
        "- trials/min, about 10 s left"
    )
    assert Pace(None, 600.0, 0, started=0.0).line(6, now=120.0) == (
        "6 finished, 3 trials/min, about 8 min left"
    )


def test_the_start_line_names_the_cpu_threads_and_a_busy_machine() -> None:
    assert device_text(torch.device("cpu"), 2) == "device cpu, 2 CPU threads"
    assert device_text(torch.device("cpu"), 1) == "device cpu, 1 CPU thread"
    assert busy_text(7.9, 2) == "machine busy: load 7.9 on 2 cores, trials run slower"
    assert busy_text(1.5, 2) is None and busy_text(None, 2) is None


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_start_line_names_the_gpu() -> None:
    name = torch.cuda.get_device_name(0)
    assert device_text(torch.device("cuda", 0), 4) == f"device cuda:0 ({name}), 4 CPU threads"
    assert device_text(torch.device("cuda"), 4) == f"device cuda ({name}), 4 CPU threads"


def test_values_print_as_yaml_not_python_reprs() -> None:
    assert flow_yaml({"name": "tpe", "seed": 0, "x": None}) == "{name: tpe, seed: 0, x: null}"
    assert flow_yaml({"name": "step", "gamma": 0.25}) == "{name: step, gamma: 0.25}"
    assert flow_yaml([64, 48]) == "[64, 48]"
    assert flow_yaml("sgd") == "sgd" and flow_yaml(0.5) == "0.5" and flow_yaml(True) == "true"
