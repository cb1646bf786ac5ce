"""Reading back what the experiment trackers recorded, without a network: W&B offline runs
(their ``run-*.wandb`` record files) and the environment that keeps W&B offline and local."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["WandbRun", "read_wandb_runs", "wandb_offline_env"]

_BLOCK = 32768
_HEADER = 7  # checksum (4 bytes), length (2), record type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def wandb_offline_env(folder: Path) -> dict[str, str]:
    """Environment variables that keep W&B offline, quiet and inside ``folder``."""
    return {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_CONSOLE": "off",
        "WANDB_DISABLE_CODE": "true",
        "WANDB_DISABLE_GIT": "true",
        "WANDB_DIR": str(folder),
        "WANDB_CACHE_DIR": str(folder / "cache"),
        "WANDB_CONFIG_DIR": str(folder / "config"),
        "WANDB_DATA_DIR": str(folder / "data"),
        "WANDB_ARTIFACT_DIR": str(folder / "artifacts"),
    }


@dataclass
class WandbRun:
    """One offline W&B run as its record file holds it.

    Attributes:
        folder: The run's folder (``offline-run-<time>-<id>``); images lie under ``files/``.
        name: Display name.
        group: Group (the study).
        job_type: ``trial`` or ``train``.
        tags: Tags.
        config: Config, values decoded from JSON.
        history: Each logged row (``_step``, ``_runtime`` ... left out).
        summary: The last value of each summary key.
        exit_code: The exit code ``finish`` recorded; None if the run never finished.
    """

    folder: Path
    name: str = ""
    group: str = ""
    job_type: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None

    def images(self) -> list[Path]:
        """The image files the run logged."""
        return sorted((self.folder / "files" / "media" / "images").rglob("*.png"))


def _chunks(data: bytes) -> Iterator[bytes]:
    """The records of a LevelDB-style log (W&B's ``.wandb`` format after its 7-byte header)."""
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, pending = 7, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left  # a block's tail too short for a header is padding
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:
            pos += left
            continue
        body = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == _FULL:
            yield body
        elif kind == _FIRST:
            pending = body
        elif kind == _MIDDLE:
            pending += body
        elif kind == _LAST:
            yield pending + body


def _items(items: Any) -> dict[str, Any]:
    out = {}
    for item in items:
        key = item.key or "/".join(item.nested_key)
        out[key] = json.loads(item.value_json)
    return out


def read_wandb_run(folder: Path) -> WandbRun:
    """The run recorded in ``folder`` (an ``offline-run-*`` folder)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = folder.glob("run-*.wandb")
    run = WandbRun(folder=folder)
    for chunk in _chunks(path.read_bytes()):
        record = pb.Record()  # type: ignore[attr-defined]
        record.ParseFromString(chunk)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.name = record.run.display_name
            run.group = record.run.run_group
            run.job_type = record.run.job_type
            run.tags = list(record.run.tags)
            run.config.update(_items(record.run.config.update))
        elif kind == "config":
            run.config.update(_items(record.config.update))
        elif kind == "history":
            row = _items(record.history.item)
            run.history.append({k: v for k, v in row.items() if not k.startswith("_")})
        elif kind == "summary":
            run.summary.update(_items(record.summary.update))
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    run.config.pop("_wandb", None)
    return run


def read_wandb_runs(folder: Path) -> list[WandbRun]:
    """Every offline run under ``folder`` (W&B's ``dir``: runs lie in ``folder/wandb/``)."""
    return [read_wandb_run(p) for p in sorted(folder.glob("wandb/offline-run-*")) if p.is_dir()]
