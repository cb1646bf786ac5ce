"""The benchmark scripts import, parse their arguments and share ``_common``; tiny quick runs.

No figure is asserted: nothing here is a timing test. The tiny runs check that a quick mode
repeats its measurement and reports the median with its spread.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))
# The suite of issue #12: JSON lines on stdout and a --quick mode of about a minute.
SUITE = ("bench_data_path", "bench_pruning", "bench_quality", "bench_scaling", "bench_storage")
# gpu_check.py is its own tool (one command for every GPU figure), tested on its own.
ALL = sorted(p.stem for p in BENCHMARKS.glob("*.py") if p.stem not in ("_common", "gpu_check"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_script_help(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [name, "--help"])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    if name in SUITE:
        assert "--quick" in out
    assert "--quick" in out and "--repeat" in out and "--out" in out


@pytest.mark.parametrize("name", ALL)
def test_every_script_uses_the_shared_helpers(name: str) -> None:
    source = (BENCHMARKS / f"{name}.py").read_text()
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert "_common" in imported, f"{name}.py does not use benchmarks/_common.py"
    # Demo data comes from _common.demo_data, not from a hand-started `hpo data synth`.
    assert '"synth"' not in source and "make_demo_data" not in source


def test_summarize_reports_the_median_and_the_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    common = _import("_common", monkeypatch)
    runs = [
        {"model": "m", "s": 1.0, "ratio": 0.9, "count": 5, "best": None},
        {"model": "m", "s": 3.0, "ratio": 1.3, "count": 5, "best": 0.5},
        {"model": "m", "s": 2.0, "ratio": 1.1, "count": 5, "best": None},
    ]
    record = common.summarize(runs)
    assert record["repeat"] == 3
    assert (record["s"], record["s_min"], record["s_max"]) == (2.0, 1.0, 3.0)
    assert (record["ratio"], record["ratio_min"], record["ratio_max"]) == (1.1, 0.9, 1.3)
    assert record["model"] == "m" and record["count"] == 5 and "count_min" not in record
    assert record["best"] == [None, 0.5, None]
    assert common.repeated(2, lambda k: {"k": k})["k"] == 0.5


def test_repeat_defaults_to_three_in_quick_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    common = _import("_common", monkeypatch)
    p = common.parser("doc", full_repeat=1)
    assert common.repeats(p.parse_args(["--quick"])) == 3
    assert common.repeats(p.parse_args([])) == 1
    assert common.repeats(p.parse_args(["--repeat", "5"])) == 5
    with pytest.raises(SystemExit):
        common.repeats(p.parse_args(["--repeat", "0"]))


def _json_lines(text: str) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    ("name", "argv"),
    [
        ("bench_train", ["--n", "16", "--image-size", "32", "24", "--threads", "1"]),
        ("bench_predict", ["--images", "16", "--size", "32", "24"]),
        ("bench_transforms", ["--sizes", "32x24", "--rounds", "2"]),
    ],
)
def test_a_tiny_quick_run_repeats_its_timing(
    name: str, argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    module = _import(name, monkeypatch)
    monkeypatch.setattr(sys, "argv", [name, "--quick", *argv])
    module.main()
    lines = _json_lines(capsys.readouterr().out)
    assert lines
    for line in lines:
        assert line["quick"] is True and line["repeat"] == 3
        timed = [k for k in line if k.endswith(("_s", "_per_s", "_per_batch"))]
        assert timed, line
        assert all(isinstance(line[k], float | int) for k in timed)


def test_the_naive_loader_trains_like_the_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The naive path's step is the floor's: the loop's precision and memory format."""
    import torch
    from PIL import Image

    common = _import("_common", monkeypatch)
    data_path = _import("bench_data_path", monkeypatch)
    from hpo.config import train_config_from_dict
    from hpo.train.loop import amp_dtype

    config = train_config_from_dict(
        {"data": {"image_size": [32, 24]}, "train": {"model": "small_cnn", "batch_size": 4}},
        "test",
    )
    device = torch.device("cpu")
    setup = common.step_setup(config, 18, device)
    assert setup["dtype"] == amp_dtype(device, config.train.amp)
    assert setup["memory_format"] == torch.channels_last  # small_cnn: channels_last on a CPU
    params = next(p for p in setup["model"].parameters() if p.dim() == 4)
    assert params.is_contiguous(memory_format=torch.channels_last)

    paths = []
    for k in range(6):
        path = tmp_path / f"{k}.jpg"
        Image.fromarray(np.full((48, 36, 3), 40 * k, dtype=np.uint8)).save(path)
        paths.append(path)
    seconds = data_path.naive_epoch(config, paths, np.arange(6) % 18, device, 1, 0)
    assert seconds > 0


def _import(name: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    if name == "_common":  # the module the scripts import, not a second copy of it
        return importlib.import_module("_common")
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_replay_counts_the_epochs_a_pruner_lets_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import optuna

    replay = _import("replay_pruning", monkeypatch)
    # Six unpruned trials of 4 epochs: the first three climb to 0.5, 0.6, 0.7; the last three
    # stay far below them from their first epoch on.
    db = tmp_path / "none-0.db"
    study = optuna.create_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    good = [[0.2, 0.3, 0.4, 0.5], [0.3, 0.4, 0.5, 0.6], [0.4, 0.5, 0.6, 0.7]]
    bad = [[0.01, 0.02, 0.03, 0.04]] * 3
    for curve in good + bad:
        trial = study.ask()
        for step, value in enumerate(curve):
            trial.report(value, step)
        study.tell(trial, curve[-1])
    trials = replay.curves(db)
    assert len(trials) == 6

    unpruned = replay.replay({"name": "none"}, trials, 0.01)
    assert unpruned["epochs"] == 24
    assert unpruned["complete"] == 6
    assert unpruned["best"] == unpruned["reference_best"] == 0.7
    assert unpruned["epochs_to_best"] == 12

    # From the first epoch, after three trials: each bad trial stops after one epoch.
    pruned = replay.replay(
        {"name": "median", "n_startup_trials": 3, "n_warmup_steps": 0}, trials, 0.01
    )
    assert pruned["epochs"] == 12 + 3
    assert pruned["complete"] == 3
    assert pruned["best"] == 0.7
    assert pruned["epochs_to_best"] == 12


def test_scaling_counts_each_workers_connections_on_postgresql(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hpo.testing.postgres import require_postgres_bindir

    require_postgres_bindir()
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    # Imported by its own name: the spawned workers import its worker function from it.
    scaling = importlib.import_module("bench_scaling")
    argv = ["bench_scaling", "--storages", "postgresql", "--workers", "3", "--trials-per-worker",
            "2", "--sleep", "0.2", "--repeat", "1", "--max-connections", "40"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    scaling.main()
    [line] = _json_lines(capsys.readouterr().out)
    assert line["workers"] == 3 and line["trials"] == 6
    assert line["exact"] is True and line["finished"] == 6 and line["duplicates"] == 0
    assert line["running"] == 0 and line["waiting"] == 0 and line["failed"] == 0
    # The throwaway server took the benchmark's limit; each worker held at most 2 connections
    # (its own thread's and the heartbeat thread's), opened once, not once per trial.
    assert line["max_connections"] == 40
    assert 1 <= line["conn_per_worker_max"] <= 2
    assert line["conn_workers_max"] <= 6
    assert line["connects_per_worker"] <= 2
    assert line["rss_mb_max"] > 0 and line["worker_cpu_ms_per_trial"] > 0
