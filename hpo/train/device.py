"""Device choice, seeding and the process-wide backend switches, set in one place by the CLI."""

from __future__ import annotations

import random
import re

import numpy as np
import torch

from hpo.exceptions import ConfigError

__all__ = ["configure_backends", "resolve_device", "seed_everything", "use_channels_last"]

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
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.backends.cudnn.benchmark = not deterministic
    torch.backends.cudnn.deterministic = deterministic


# Model families whose CPU train step is faster in channels_last (oneDNN's depthwise and
# small-channel convolutions). On a quiet 2-core machine (issue #12): mobilenet_v3_small 1.9x
# at 64x48 and 1.4x at 128x96, efficientnet_b0 1.5x at 128x96, resnet18 0.9-1.1x; small_cnn
# 1.3-1.4x at 64x48 (benchmarks/bench_data_path.py --formats-only, a loaded machine).
# ResNets stay contiguous.
_CPU_CHANNELS_LAST = ("small_cnn", "mobilenet_", "efficientnet_")


def use_channels_last(device: torch.device, model: str, enabled: bool = True) -> bool:
    """Whether to train ``model`` (a registry name) on ``device`` in channels_last.

    On CUDA always (when ``enabled``); on the CPU for the model families measured faster in
    it. The choice depends on nothing else, so CPU runs stay repeatable bit for bit.
    """
    if not enabled:
        return False
    if device.type == "cuda":
        return True
    return device.type == "cpu" and model.startswith(_CPU_CHANNELS_LAST)
