"""Reading what a command printed, for tests of the command line."""

from __future__ import annotations

__all__ = ["one_error_line"]


def one_error_line(err: str) -> str:
    """The one ``error:`` line of ``err``, which must be the last line on stderr (a command may
    say what it does first, as ``hpo train`` does)."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]
