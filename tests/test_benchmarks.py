"""The benchmark scripts import and parse their arguments (no timing: nothing is measured)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(p.stem for p in BENCHMARKS.glob("bench_*.py"))
# The suite of issue #12: JSON lines on stdout and a --quick mode of about a minute.
SUITE = ("bench_data_path", "bench_pruning", "bench_quality", "bench_scaling", "bench_storage")


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
    if name in SUITE:
        assert "--quick" in capsys.readouterr().out
