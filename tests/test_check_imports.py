"""tools/check_imports.py: cycles counting imports inside functions, not TYPE_CHECKING ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / "tools" / "check_imports.py"


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "pkg"
    for name, text in {"__init__.py": "", **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), str(root)], capture_output=True, text=True, check=False
    )


def test_the_project_has_no_import_cycle() -> None:
    done = _check(ROOT / "hpo")
    assert done.returncode == 0, done.stdout
    assert done.stdout.startswith("no import cycle among ")


@pytest.mark.parametrize(
    ("files", "cycle"),
    [
        pytest.param(
            {
                "a.py": "from pkg.b import g\n\ndef f():\n    return g()\n",
                "b.py": "def g():\n    from pkg import a\n    return a\n",
            },
            "pkg.a <-> pkg.b",
            id="inside-a-function",
        ),
        pytest.param(
            {
                "sub/__init__.py": "",
                "sub/x.py": "from . import y\n",
                "sub/y.py": "from .x import name\n",
            },
            "pkg.sub.x <-> pkg.sub.y",
            id="relative",
        ),
    ],
)
def test_a_cycle_is_found(tmp_path: Path, files: dict[str, str], cycle: str) -> None:
    done = _check(_package(tmp_path, files))
    assert done.returncode == 1
    assert f"import cycle: {cycle}" in done.stdout


def test_type_checking_imports_and_reexports_are_not_cycles(tmp_path: Path) -> None:
    root = _package(
        tmp_path,
        {
            "__init__.py": "from pkg.a import f\n",
            "a.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg.b import g\n\ndef f():\n    return 1\n"
            ),
            "b.py": "from pkg.a import f\n",
        },
    )
    done = _check(root)
    assert done.returncode == 0, done.stdout
    assert "no import cycle among 3 modules" in done.stdout
