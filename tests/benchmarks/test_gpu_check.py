"""benchmarks/gpu_check.py --smoke: every step of the GPU check runs on the CPU with tiny sizes
and writes the same keys a GPU run writes, so the script cannot rot while no GPU is at hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _keys() -> dict[str, tuple[str, ...]]:
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("_gpu_check", SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up there
        spec.loader.exec_module(module)
        return dict(module.KEYS)
    finally:
        sys.modules.pop("_gpu_check", None)
        sys.path.remove(str(SCRIPT.parent))


@pytest.mark.slow
def test_smoke_runs_every_step_and_writes_the_gpu_runs_keys(
    tmp_path: Path, demo_data: Path
) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    # A generous budget: on a loaded machine the check would rather skip than fail, and here
    # every step must run.
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--budget", "240", "--out", str(out),
         "--data", str(demo_data)],
        env=env, capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in (out / "gpu_check.jsonl").read_text().splitlines()]
    assert records == [json.loads(line) for line in proc.stdout.splitlines()]
    keys = _keys()
    common = {"bench", "step", "status", "reason", "seconds", "load_avg", "cpus", "time"}
    for record in records:
        assert set(record) == common | set(keys[record["step"]]), record["step"]
    steps = [(r["step"], r.get("model"), r.get("amp_channels_last"), r.get("workers_per_gpu"))
             for r in records]  # fmt: skip
    assert steps == [
        ("environment", None, None, None),
        ("train", "small_cnn", None, None),
        ("predict", None, None, None),
        ("loop", "small_cnn", True, None),
        ("loop", "small_cnn", False, None),
        ("data_path", "small_cnn", None, None),
        ("workers", None, None, 1),
        ("workers", None, None, 2),
        ("summary", None, None, None),
    ]
    assert all(r["status"] == "ok" for r in records), [r["reason"] for r in records]
    by_step = {r["step"]: r for r in records}
    assert by_step["environment"]["device"] == "cpu" and by_step["environment"]["smoke"] is True
    assert by_step["train"]["finite"] is True and by_step["train"]["run_written"] is True
    assert by_step["predict"]["rows"] > 0
    for record in records:
        if record["step"] in ("loop", "data_path", "workers"):
            rates = [v for k, v in record.items() if k.endswith("_per_s") or k.endswith("minute")]
            assert rates and all(v > 0 for v in rates), record
    table = (out / "gpu_check.md").read_text()
    for step in keys:
        assert f"## {step}" in table
