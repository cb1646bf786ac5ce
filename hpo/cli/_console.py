"""The one place that builds consoles and tables: styled on a terminal, plain lines otherwise."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table

__all__ = ["LOG_WIDTH", "make_console", "print_table"]

LOG_WIDTH = 10_000
"""Width given to a console that does not write to a terminal: in practice, never wrap."""


class _Console(Console):
    def on_broken_pipe(self) -> None:
        # Rich exits 1 here; let `hpo.cli.main` exit as it does for every closed pipe.
        self.quiet = True
        raise BrokenPipeError()


def make_console(*, stderr: bool = False) -> Console:
    """A console on stdout (or ``stderr``) for the CLI's output.

    On a terminal: colours and the terminal's width. Anywhere else (``> log``, a pipe, nohup,
    ``docker logs``, CI) one unwrapped line per ``print``, no colour and no escape codes, so
    logs can be grepped; callers check :attr:`rich.console.Console.is_terminal` before starting
    a live progress display and write log lines instead, and print tables through
    :func:`print_table`. Emoji codes (``:smile:``) are never replaced, and Python reprs are not
    highlighted: the text printed is the text given. Markup still applies, so user-supplied
    strings must go through :func:`rich.markup.escape` (or be passed as
    :class:`rich.text.Text`).

    Args:
        stderr: Write to standard error (progress and log lines) instead of standard output.
    """
    if Console(stderr=stderr).is_terminal:
        return _Console(stderr=stderr, highlight=False, emoji=False)
    return _Console(
        stderr=stderr,
        soft_wrap=True,
        no_color=True,
        highlight=False,
        emoji=False,
        width=LOG_WIDTH,
    )


def print_table(
    console: Console,
    rows: Iterable[Sequence[str]],
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    note: str | None = None,
    right: Collection[str] = (),
) -> None:
    """Print rows of plain text: a Rich table on a terminal, plain lines anywhere else.

    The one rule for every table the CLI prints (run summary, ``hpo score``, ``hpo studies``):
    boxes and aligned columns only on a terminal. In a log, a pipe or a file: ``title`` on a
    line of its own, then with ``columns`` a header line and one line per row, the cells
    separated by tabs (``cut -f``, ``awk -F'\\t'``); without ``columns`` (a key/value table)
    one ``key: value`` line per row; then ``note``. Cells, title and note are plain text, never
    markup.

    Args:
        console: Where to print (see :func:`make_console`).
        rows: The cells of each row, as text.
        columns: Column headers; None for a two-column key/value table without a header.
        title: A line above the table.
        note: A line below the table (what a column means).
        right: Headers of the columns to right-align on a terminal (numbers).
    """
    rows = [list(row) for row in rows]
    if not console.is_terminal:
        lines = [] if title is None else [title]
        if columns is None:
            lines += [f"{row[0]}: {' '.join(row[1:])}" for row in rows]
        else:
            lines += ["\t".join(columns), *("\t".join(row) for row in rows)]
        if note is not None:
            lines.append(note)
        # Written past Rich, which would expand the tabs into spaces.
        console.file.write("".join(f"{line}\n" for line in lines))
        console.file.flush()
        return
    table = Table(
        title=None if title is None else escape(title),
        title_justify="left",
        caption=None if note is None else escape(note),
        caption_justify="left",
        show_header=columns is not None,
    )
    for header in columns or ("", ""):
        table.add_column(escape(header), justify="right" if header in right else "left")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
