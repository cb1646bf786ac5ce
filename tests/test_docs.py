"""The docs cannot drift from the code: every command, flag, study-file key and registry entry.

``docs/reference.md`` has one section per command, headed with the command in backticks
(``## `hpo run` ``); the section holds the command's usage line (as ``--help`` prints it) and
every flag in backticks. ``docs/study-file.md`` has a table row per key whose first cell is the
key in backticks, and per registry entry a row whose first cell names the entry in backticks and
whose other cells name each of its parameters in backticks (several entries may share a row).
Documenting a new command, flag, key or entry is all these tests need.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import click
import pytest
from pydantic import BaseModel

from hpo.cli import cli
from hpo.components import LOSSES, MODELS, OPTIMIZERS, PRUNERS, SAMPLERS, SCHEDULERS, TRACKERS
from hpo.config import Component, DataConfig, TrainConfig, TrainSettings
from hpo.study import StudySettings

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference.md"
STUDY_FILE = ROOT / "docs" / "study-file.md"
REGISTRIES = (MODELS, OPTIMIZERS, SCHEDULERS, LOSSES, SAMPLERS, PRUNERS, TRACKERS)


def _commands() -> Iterator[tuple[click.Command, click.Context]]:
    """Every command of the real tree with its context (command path, usage pieces)."""
    stack: list[tuple[click.Command, click.Context]] = [(cli, click.Context(cli, info_name="hpo"))]
    while stack:
        command, ctx = stack.pop()
        yield command, ctx
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                assert sub is not None
                stack.append((sub, click.Context(sub, info_name=name, parent=ctx)))


def _sections(text: str) -> dict[str, str]:
    """Section body by command, from headings like ``## `hpo studies show` ``."""
    sections: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        heading = re.match(r"#{1,6}\s+`(hpo(?: [\w-]+)*)`\s*$", line)
        if heading:
            current = heading.group(1)
            sections[current] = ""
        elif line.startswith("#"):
            current = None
        elif current is not None:
            sections[current] += line + "\n"
    return sections


def _mentions(text: str, flag: str) -> bool:
    return re.search("`" + re.escape(flag) + r"(?=[`\s=\\])", text) is not None


def test_every_command_and_flag_is_in_the_reference() -> None:
    sections = _sections(REFERENCE.read_text())
    missing = []
    for command, ctx in _commands():
        path = ctx.command_path
        if path not in sections:
            missing.append(f"{path}: no section headed `{path}`")
            continue
        usage = " ".join([path, *command.collect_usage_pieces(ctx)])
        if usage not in sections[path]:
            missing.append(f"{path}: usage line {usage!r}")
        for param in command.params:
            if not isinstance(param, click.Option) or param.hidden:
                continue
            for flag in [*param.opts, *param.secondary_opts]:
                if flag.startswith("--") and not _mentions(sections[path], flag):
                    missing.append(f"{path}: {flag}")
    assert not missing, "docs/reference.md lacks:\n  " + "\n  ".join(missing)


def test_the_reference_names_no_command_or_flag_that_does_not_exist() -> None:
    real = {ctx.command_path: command for command, ctx in _commands()}
    stale = []
    for path, body in _sections(REFERENCE.read_text()).items():
        if path not in real:
            stale.append(f"section `{path}`: no such command")
            continue
        flags = {f for p in real[path].params for f in (*p.opts, *p.secondary_opts)}
        for row in body.splitlines():
            cells = _cells(row)
            if cells:
                for flag in re.findall(r"`(--[\w-]+)", cells[0]):
                    if flag not in flags:
                        stale.append(f"{path}: {flag}")
    assert not stale, "docs/reference.md documents what the CLI lacks:\n  " + "\n  ".join(stale)


def _cells(line: str) -> list[str]:
    """The cells of a markdown table row (``\\|`` inside a cell is text); [] for other lines."""
    line = line.strip()
    if not line.startswith("|"):
        return []
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]


def _tables(text: str) -> Iterator[tuple[str, list[list[str]]]]:
    """(first header cell, body rows) of every markdown table."""
    header: list[str] | None = None
    rows: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        cells = _cells(line)
        if not cells:
            if header is not None:
                yield header[0], rows
            header, rows = None, []
        elif header is None:
            header = cells
        elif not set("".join(cells)) <= set("-: "):
            rows.append(cells)


def _keys(model: type[BaseModel], prefix: str) -> Iterator[str]:
    """Dotted keys of ``model``'s fields; components give their own fields, not their params."""
    for name, field in model.model_fields.items():
        if name == "params" and issubclass(model, Component):
            continue
        key = f"{prefix}.{name}"
        yield key
        for kind in (field.annotation, *get_args(field.annotation)):
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from _keys(kind, key)


def schema_keys() -> set[str]:
    keys = {"study", "data", "train", "search_space", "provenance", "trackers"}
    keys |= set(_keys(StudySettings, "study"))
    keys |= set(_keys(DataConfig, "data"))
    keys |= set(_keys(TrainSettings, "train"))
    assert set(TrainConfig.model_fields) <= keys  # a new top-level section is a new key too
    return keys


def _documented_keys(text: str) -> set[str]:
    documented = set()
    for _, rows in _tables(text):
        for cells in rows:
            key = re.fullmatch(r"`([\w.\[\]]+)`", cells[0])
            if key:
                documented.add(key.group(1))
    return documented


def test_every_study_file_key_is_documented() -> None:
    documented = _documented_keys(STUDY_FILE.read_text())
    expected = schema_keys()
    missing = sorted(expected - documented)
    assert not missing, "docs/study-file.md has no row for:\n  " + "\n  ".join(missing)
    sections = ("study", "data", "train", "provenance", "trackers")
    stale = sorted(k for k in documented - expected if k.split(".")[0] in sections)
    assert not stale, "docs/study-file.md documents keys the schema lacks:\n  " + "\n  ".join(
        stale
    )


def _entry_rows(text: str, kind: str) -> dict[str, str]:
    """Entry name -> the rest of its row, from the tables headed ``| KIND | ...``."""
    rows: dict[str, str] = {}
    for head, body in _tables(text):
        if head == kind:
            for cells in body:
                for name in re.findall(r"`([\w.]+)`", cells[0]):
                    rows[name] = " ".join(cells[1:])
    return rows


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.kind)
def test_every_registry_entry_and_parameter_is_documented(registry: Any) -> None:
    rows = _entry_rows(STUDY_FILE.read_text(), registry.kind)
    missing = []
    for name in registry.names():
        if name not in rows:
            missing.append(f"{registry.kind} {name}")
            continue
        missing += [
            f"{registry.kind} {name}: parameter {param}"
            for param in registry.parameters(name)
            if f"`{param}`" not in rows[name]
        ]
    unknown = sorted(set(rows) - set(registry.names()))
    missing += [f"{registry.kind} {name}: not registered" for name in unknown]
    assert not missing, "docs/study-file.md, registry tables:\n  " + "\n  ".join(missing)


def _ci_test_command() -> str:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [ln.strip() for ln in lines if "pytest" in ln and not ln.lstrip().startswith("#")]
    assert len(commands) == 1, f".ci/run: expected one test command, found {commands}"
    return commands[0]


def test_ci_runs_the_readme_test_command_exactly() -> None:
    command = _ci_test_command()
    readme = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines()]
    assert command in readme, f"README.md lacks .ci/run's test command as a line: {command}"


def test_readme_is_a_guide_and_points_only_inside_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "../shared" not in readme
    size = len(readme.encode())
    assert size <= 16_000, f"README.md is {size} bytes: move reference text to docs/"
    lines = len((ROOT / "BENCHMARKS.md").read_text().splitlines())
    assert lines <= 320, f"BENCHMARKS.md is {lines} lines: raw results go to benchmarks/results/"


@pytest.mark.parametrize(
    "doc",
    [
        "README.md",
        "BENCHMARKS.md",
        "CHANGELOG.md",
        "benchmarks/results/README.md",
        *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")),
    ],
)
def test_relative_links_resolve(doc: str) -> None:
    path = ROOT / doc
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (path.parent / target.split("#")[0]).exists():
            broken.append(target)
    assert not broken, f"{doc}: links to missing files: {broken}"
