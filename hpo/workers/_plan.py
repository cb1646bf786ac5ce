"""The plan of several workers on one machine: which device each runs on, with how many threads."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from hpo.exceptions import ConfigError

__all__ = ["PlanError", "WorkerPlan", "available_cores", "plan_workers"]

_CUDA = re.compile(r"cuda:(\d+)")
_SETTINGS = ("devices", "workers_per_device", "workers", "force_workers")


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process to run.

    Attributes:
        name: ``w1``, ``w2``, ... (prefix of its lines, row of the live view).
        device: ``cpu`` or ``cuda:K``.
        threads: Torch CPU threads of the process (its share of the cores).
    """

    name: str
    device: str
    threads: int


class PlanError(ConfigError):
    """Settings of :func:`plan_workers` that make no plan.

    The message names the settings by their keyword (``devices``, ``workers_per_device``,
    ``workers``); a front end that calls them otherwise (the CLI's flags) says it in its own
    words with :meth:`render`.
    """

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = values
        super().__init__(self.render({name: name for name in _SETTINGS}))

    def render(self, names: Mapping[str, str]) -> str:
        """The message with each setting called by ``names[keyword]``."""
        return self.template.format(**names, **self.values)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _available(count: int) -> str:
    if count == 0:
        return "no CUDA devices on this machine; for CPU workers use {workers} N"
    return "available: " + ("cuda:0" if count == 1 else f"cuda:0..cuda:{count - 1}")


def _parse_devices(spec: str, count: int) -> list[str]:
    value = spec.strip().lower()
    if value == "all":
        if count == 0:
            raise PlanError("{devices} {spec!r}: " + _available(count), spec=spec)
        return [f"cuda:{i}" for i in range(count)]
    devices: list[str] = []
    for token in (t.strip() for t in value.split(",")):
        match = _CUDA.fullmatch(token)
        if match is None:
            raise PlanError(
                "{devices} {spec!r}: expected all or cuda:K[,cuda:K...], got {token!r} ("
                + _available(count)
                + ")",
                spec=spec,
                token=token,
            )
        if int(match.group(1)) >= count:
            raise PlanError(
                "{devices} {spec!r}: no device {token} (" + _available(count) + ")",
                spec=spec,
                token=token,
            )
        if token in devices:
            raise PlanError(
                "{devices} {spec!r}: {token} listed twice; use {workers_per_device} M for several "
                "workers on one device",
                spec=spec,
                token=token,
            )
        devices.append(token)
    return devices


def plan_workers(
    *,
    devices: str | None,
    workers_per_device: int | None,
    workers: int | None,
    cuda_count: int | None = None,
    cores: int | None = None,
    force: bool = False,
) -> list[WorkerPlan] | None:
    """The worker processes that ``devices`` and ``workers_per_device``, or ``workers`` ask for.

    Every worker gets ``max(1, cores // number of workers)`` torch threads, so workers do not
    fight over the cores.

    Args:
        devices: ``all`` or ``cuda:0,cuda:1``; None for CPU workers.
        workers_per_device: Workers per listed device (default 1).
        workers: Number of CPU workers (without ``devices``).
        cuda_count: CUDA devices of this machine (default: what torch sees).
        cores: Cores to divide (default: this process's CPU affinity).
        force: Allow more worker processes than cores. Refused without it: every worker is a
            process with its own torch (hundreds of MB before its first batch), so a typo such
            as 500 workers on a small machine would start processes until memory runs out.

    Returns:
        None when none of the settings is given: one worker runs in the calling process.

    Raises:
        PlanError: A device that does not exist or cannot be parsed (naming what is
            available), settings that do not go together, or (without ``force``) more
            workers than cores.
    """
    if devices is None and workers_per_device is None and workers is None:
        return None
    if devices is not None and workers is not None:
        raise PlanError(
            "{workers} N starts CPU workers; with {devices} use {workers_per_device} M"
        )
    if devices is None and workers_per_device is not None:
        raise PlanError("{workers_per_device} needs {devices} (for CPU workers: {workers} N)")
    per_device = 1 if workers_per_device is None else workers_per_device
    if per_device < 1:
        raise PlanError("{workers_per_device} must be at least 1, got {got}", got=per_device)
    if devices is not None:
        listed = _parse_devices(devices, _cuda_count() if cuda_count is None else cuda_count)
        slots = [device for device in listed for _ in range(per_device)]
    else:
        assert workers is not None
        if workers < 1:
            raise PlanError("{workers} must be at least 1, got {got}", got=workers)
        slots = ["cpu"] * workers
    cores = available_cores() if cores is None else cores
    if len(slots) > cores and not force:
        asked = (
            "{workers} {got}"
            if devices is None
            else "{devices} {spec!r} with {workers_per_device} {per}"
        )
        raise PlanError(
            asked + ": {total} worker processes but this machine has {cores} core(s) for them; "
            "start at most {cores}, or add {force_workers} to start them anyway",
            got=workers,
            spec=devices,
            per=per_device,
            total=len(slots),
            cores=cores,
        )
    threads = max(1, cores // len(slots))
    return [WorkerPlan(f"w{i + 1}", device, threads) for i, device in enumerate(slots)]
