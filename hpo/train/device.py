"""Device choice, seeding and the process-wide backend switches, set in one place by the CLI."""

from __future__ import annotations

import random
import re

import numpy as np
import torch

from hpo.exceptions import ConfigError

__all__ = [
    "configure_backends",
    "resolve_device",
    "seed_everything",
    "set_threads",
    "use_channels_last",
]

_CUDA_INDEX = re.compile(r"cuda:(\d+)")


def resolve_device(spec: str) -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:K`` into a device that exists.

    Raises:
        ConfigError: The value is not one of those, or names a GPU this machine lacks.
    """
    value = spec.strip().lower()
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if value == "cpu":
        return torch.device("cpu")
    if value == "cuda" or _CUDA_INDEX.fullmatch(value):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {spec!r}: no CUDA GPU is available; use cpu or auto")
        index = int(value.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise ConfigError(
                f"--device {spec!r}: this machine has {count} CUDA device(s): "
                f"cuda:0..cuda:{count - 1}"
            )
        return torch.device("cuda", index)
    raise ConfigError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:K")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all CUDA devices included).

    ``fit`` seeds its own generators from the config; this covers everything else a command
    does with randomness.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def configure_backends(device: torch.device, *, deterministic: bool = False) -> None:
    """Process-wide speed switches for ``device``; call once from a command, never from a library.

    On CUDA: TF32 matmuls and convolutions, and cuDNN autotuning unless ``deterministic``
    (which also asks cuDNN for deterministic kernels). Nothing changes on the CPU.
    """
    if device.type != "cuda":
        return
    _allow_tf32()
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


def _allow_tf32() -> None:
    # torch 2.9+ sets precision per backend and operation; the older allow_tf32 flags are
    # deprecated there (and mixing the two APIs is an error), so use them only on older torch.
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "fp32_precision"):
        matmul.fp32_precision = "tf32"
        conv.fp32_precision = "tf32"  # type: ignore[union-attr]
    else:  # pragma: no cover - torch < 2.9
        matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def set_threads(threads: int) -> None:
    """Torch's CPU threads for this process; call once from a command, never from a library.

    Several workers on one machine each get a share of the cores: with a full set of threads
    each, they fight over the cores and every one of them slows down many times over.
    """
    torch.set_num_threads(max(1, int(threads)))


def use_channels_last(device: torch.device, cpu_channels_last: bool, enabled: bool = True) -> bool:
    """Whether to train in channels_last on ``device``.

    On CUDA always (when ``enabled``); on the CPU for the models whose registry info says they
    are faster in it (``ModelInfo.cpu_channels_last``). The choice depends on nothing else, so
    CPU runs stay repeatable bit for bit.
    """
    if not enabled:
        return False
    return device.type == "cuda" or (device.type == "cpu" and cpu_channels_last)
