"""The one place that builds Rich consoles: styled for a terminal, plain log lines otherwise."""

from __future__ import annotations

from rich.console import Console

__all__ = ["LOG_WIDTH", "make_console"]

LOG_WIDTH = 10_000
"""Width given to a console that does not write to a terminal: in practice, never wrap."""


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or ``stderr``) for the CLI's output.

    On a terminal: colours and the terminal's width. Anywhere else (``> log``, a pipe, nohup,
    ``docker logs``, CI) one unwrapped line per ``print``, no colour and no escape codes, so
    logs can be grepped; callers check :attr:`rich.console.Console.is_terminal` before starting
    a live progress display and write log lines instead. Emoji codes (``:smile:``) are never
    replaced, and Python reprs are not highlighted: the text printed is the text given.
    Markup still applies, so user-supplied strings must go through
    :func:`rich.markup.escape` (or be passed as :class:`rich.text.Text`).

    Args:
        stderr: Write to standard error (progress and log lines) instead of standard output.
    """
    if Console(stderr=stderr).is_terminal:
        return Console(stderr=stderr, highlight=False, emoji=False)
    return Console(
        stderr=stderr,
        soft_wrap=True,
        no_color=True,
        highlight=False,
        emoji=False,
        width=LOG_WIDTH,
    )
