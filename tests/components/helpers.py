"""Helpers of the component tests."""

from __future__ import annotations

import subprocess
import sys


def run_without_torch(*lines: str) -> None:
    """Run ``lines`` in a fresh interpreter and check that they pass without importing torch."""
    code = "\n".join(["import sys", *lines, "assert 'torch' not in sys.modules, 'torch imported'"])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
