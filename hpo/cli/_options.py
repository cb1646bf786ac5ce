"""Options shared by several subcommands, as reusable decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["device_option", "set_option", "storage_option"]


def set_option(func: F) -> F:
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a setting by dotted path (value parsed as YAML); repeatable, later wins.",
    )(func)


def device_option(func: F) -> F:
    return click.option(
        "--device",
        default="auto",
        show_default=True,
        help="auto, cpu, cuda or cuda:K.",
    )(func)


def storage_option(func: F) -> F:
    return click.option(
        "--storage",
        default=None,
        metavar="URL",
        help="Study storage URL (overrides HPO_STORAGE and the study file).",
    )(func)
