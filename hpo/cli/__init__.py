"""The ``hpo`` command line: parses arguments and prints; the work lives in library modules."""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from typing import Any, NoReturn

import click

from hpo import __version__
from hpo.exceptions import HPOError

__all__ = ["main"]

PIPE_CLOSED_EXIT = 141
"""Exit code when the reader of the output went away (``hpo ... | head``): 128 + SIGPIPE, what
a shell reports for any command stopped that way (``git log | head``, ``yes | head``)."""

# Subcommand name -> "module:attribute"; modules are imported only when their command runs,
# so `hpo --help` and `hpo data check` do not pay for importing torch and optuna.
_COMMANDS = {
    "run": "hpo.cli.run:run",
    "train": "hpo.cli.train:train",
    "export": "hpo.cli.export:export",
    "ensemble": "hpo.cli.ensemble:ensemble",
    "predict": "hpo.cli.predict:predict",
    "score": "hpo.cli.score:score",
    "dashboard": "hpo.cli.dashboard:dashboard",
    "studies": "hpo.cli.studies:studies",
    "data": "hpo.cli.data:data",
    "models": "hpo.cli.models:models",
    "cache": "hpo.cli.cache:cache",
    "init": "hpo.cli.init:init",
}


class _PipeClosed(Exception):
    """The reader of our output went away; raised in place of ``BrokenPipeError``.

    Click turns an ``EPIPE`` inside a command into a silent exit 1 before :func:`main` sees
    it; this type passes through Click to :func:`main`, which exits quietly.
    """


class _LazyGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            raise _PipeClosed() from None

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hpo")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Hyperparameter optimization for image classifiers (Optuna + PyTorch)."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str] | None = None) -> Any:
    """Entry point: user errors print one line and exit 2, other failures exit 1."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        return cli.main(args=argv, prog_name="hpo", standalone_mode=False)
    except HPOError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (_PipeClosed, BrokenPipeError):
        _pipe_closed()
    except click.exceptions.Abort as exc:
        # click turns a KeyboardInterrupt (our Interrupted too) into Abort: keep its signal.
        if isinstance(exc.__cause__, KeyboardInterrupt):
            _interrupted(exc.__cause__)
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:  # `hpo studies`: the group's help
        exc.show()
        sys.exit(exc.exit_code)
    except click.UsageError as exc:
        click.echo(f"error: {_usage_error(exc)}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if exc.exit_code == 2 else exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt as exc:
        _interrupted(exc)
    except Exception as exc:
        if debug:
            raise
        click.echo(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            err=True,
        )
        sys.exit(1)


def _interrupted(exc: KeyboardInterrupt) -> NoReturn:
    # Interrupted (hpo.cli._signals) carries the signal: 130 for SIGINT, 143 for SIGTERM.
    signame = getattr(exc, "signame", "SIGINT")
    click.echo("interrupted" if signame == "SIGINT" else f"stopped by {signame}", err=True)
    sys.exit(getattr(exc, "exit_code", 130))


def _usage_error(exc: click.UsageError) -> str:
    """One line: ``hpo studies report: missing argument 'NAME' (usage: hpo studies report
    [OPTIONS] NAME)``, where Click would print its usage block."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = exc.ctx
    if ctx is None:
        return message
    usage = " ".join(ctx.get_usage().split()).removeprefix("Usage: ")
    return f"{ctx.command_path}: {message} (usage: {usage}; {ctx.command_path} -h for help)"


def _pipe_closed() -> NoReturn:
    """Exit quietly after the reader of our output went away, as other commands do.

    Python would print a traceback, then fail again flushing stdout at exit; send whatever is
    still buffered to /dev/null instead, and say nothing (stderr may be the same pipe).
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        # A stream without a file descriptor (captured by a test) keeps its own buffer.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, stream.fileno())
    sys.exit(PIPE_CLOSED_EXIT)
