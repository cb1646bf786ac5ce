"""one_error_line: a failing command's stderr ends in exactly one error line."""

from __future__ import annotations

import pytest

from hpo.testing.cli import one_error_line


def test_the_last_line_is_the_one_error_line() -> None:
    err = "training resnet18 on 3 folds\n\nerror: best.yaml: train.epochs must be >= 1\n"
    assert one_error_line(err) == "error: best.yaml: train.epochs must be >= 1"


@pytest.mark.parametrize(
    "err",
    ["", "Traceback (most recent call last):\n", "error: one\nerror: two\n", "error: x\nmore\n"],
)
def test_anything_else_fails_showing_stderr(err: str) -> None:
    with pytest.raises(AssertionError):
        one_error_line(err)
