"""Milliseconds per batch of ``prepare_batch``: uint8 pixels to normalized, augmented input.

The loop's epoch is the model's floor plus this (the decoded cache hands over ready pixels),
so it is what ``cached_over_floor`` in ``bench_data_path.py`` is made of. With ``--against REV``
the same function from a git revision of ``hpo/data/transforms.py`` is timed side by side in
the same process, rounds alternating, so a change to the transforms is measured against its
predecessor under the same load. Keys: ``image_size``, ``augment``, ``ms_per_batch`` (best of
``--rounds``), ``against``, ``against_ms_per_batch``, ``speedup`` (against / this tree); each
the median of ``--repeat`` runs, with ``_min`` and ``_max``.

    python benchmarks/bench_transforms.py --quick
    python benchmarks/bench_transforms.py --against bb54970 --sizes 64x48 128x96 256x192

``--loop MODEL ...`` also times whole epochs of ``hpo.train.fit`` (random pixels, default
augmentation) with this tree's and the revision's transforms, alternating, and the model's
floor between them (``bench_data_path.py``'s): keys ``model``, ``loop_s``, ``against_loop_s``,
``floor_s``, ``loop_over_floor``, ``against_over_floor`` (each the best of its epochs).
"""

from __future__ import annotations

import functools
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from _common import ROOT, Emitter, floor_epoch, log, parser, repeated, repeats

import hpo.data
from hpo.config import AugmentConfig, train_config_from_dict
from hpo.data import transforms
from hpo.train.device import configure_backends
from hpo.train.loop import fit

AUGMENT = {
    "train": AugmentConfig(hflip=True, crop_scale=0.9, color_jitter=0.1),
    "eval": None,
}


def module_at(rev: str) -> ModuleType:
    """``hpo/data/transforms.py`` as it was at git revision ``rev``, imported on its own."""
    source = subprocess.run(
        ["git", "show", f"{rev}:hpo/data/transforms.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "transforms_at_rev.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("transforms_at_rev", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_ms(fn: Callable[[], Any], rounds: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1000


def side_by_side(
    pixels: torch.Tensor,
    augment: AugmentConfig | None,
    other: ModuleType | None,
    rounds: int,
    channels_last: bool,
) -> tuple[list[float], list[float]]:
    """Best milliseconds of this tree's ``prepare_batch`` and ``other``'s, rounds alternating."""
    generator = torch.Generator().manual_seed(0)

    def call(module: ModuleType) -> Any:
        return module.prepare_batch(
            pixels, augment=augment, generator=generator, channels_last=channels_last
        )

    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(2):  # alternate, so both see the same spells of load
        ours.append(best_ms(lambda: call(transforms), rounds // 2))
        if other is not None:
            theirs.append(best_ms(lambda: call(other), rounds // 2))
    return ours, theirs


def batch_figures(
    pixels: torch.Tensor,
    augment: AugmentConfig | None,
    other: ModuleType | None,
    rounds: int,
    channels_last: bool,
    _run: int,
) -> dict[str, Any]:
    """One run of ``side_by_side``: the best milliseconds of each, and their ratio."""
    ours, theirs = side_by_side(pixels, augment, other, rounds, channels_last)
    record: dict[str, Any] = {"ms_per_batch": round(min(ours), 2)}
    if other is not None:
        record["against_ms_per_batch"] = round(min(theirs), 2)
        record["speedup"] = round(min(theirs) / min(ours), 2)
    return record


def loop_side_by_side(
    model: str,
    size: tuple[int, int],
    other: ModuleType | None,
    batch_size: int,
    rounds: int,
    _run: int = 0,
) -> dict[str, Any]:
    """Best epoch seconds of ``fit`` with each ``prepare_batch``, and of the floor, alternating."""
    n, device = 1024, torch.device("cpu")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
    labels = rng.integers(0, 18, n)
    config = train_config_from_dict(
        {
            "data": {"image_size": list(size)},
            "train": {
                "model": model,
                "epochs": 3,
                "batch_size": batch_size,
                "scheduler": {"name": "constant"},
            },
        },
        "bench",
    )
    ours = hpo.data.prepare_batch
    times: dict[str, list[float]] = {"loop": [], "against": [], "floor": []}
    try:
        for _ in range(rounds):
            for key, fn in (("loop", ours), ("against", other and other.prepare_batch)):
                if fn is None:
                    continue
                hpo.data.prepare_batch = fn  # what the loop calls, looked up per batch
                run = fit(
                    config, images, labels, np.arange(n), None, device=device, num_classes=18
                )
                times[key] += [epoch.seconds for epoch in run.history[1:]]
            times["floor"].append(floor_epoch(config, n, 18, device, 2))
    finally:
        hpo.data.prepare_batch = ours
    best = {key: min(values) for key, values in times.items() if values}
    record = {
        "model": model,
        "loop_s": round(best["loop"], 3),
        "floor_s": round(best["floor"], 3),
        "loop_over_floor": round(best["loop"] / best["floor"], 3),
    }
    if "against" in best:
        record["against_loop_s"] = round(best["against"], 3)
        record["against_over_floor"] = round(best["against"] / best["floor"], 3)
    return record


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--sizes", nargs="+", default=None, help="HxW, e.g. 64x48 128x96")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--rounds", type=int, default=None, help="timed batches (best is kept)")
    p.add_argument("--against", default=None, help="a git revision to time side by side")
    p.add_argument("--channels-last", action="store_true", help="return channels_last")
    p.add_argument("--device", default="cpu")
    p.add_argument("--loop", nargs="*", default=[], metavar="MODEL", help="also whole epochs")
    p.add_argument("--loop-rounds", type=int, default=3, help="fit runs per transforms")
    args = p.parse_args()
    sizes = args.sizes or (["64x48"] if args.quick else ["64x48", "128x96", "256x192"])
    rounds = args.rounds or (10 if args.quick else 40)
    device = torch.device(args.device)
    other = module_at(args.against) if args.against else None
    repeat = repeats(args)
    emit = Emitter("transforms", args.out, quick=args.quick, batch_size=args.batch_size)
    for size in sizes:
        h, w = (int(v) for v in size.split("x"))
        g = torch.Generator().manual_seed(0)
        pixels = torch.randint(0, 256, (args.batch_size, h, w, 3), generator=g, dtype=torch.uint8)
        pixels = pixels.to(device)
        for name, augment in AUGMENT.items():
            log(f"{size} {name} ...")
            measure = functools.partial(
                batch_figures, pixels, augment, other, rounds, args.channels_last
            )
            record = {"image_size": size, "augment": name, "against": args.against}
            record |= repeated(repeat, measure)
            emit(device=str(device), torch_threads=torch.get_num_threads(), **record)
        if args.loop:
            configure_backends(torch.device("cpu"))
        for model in args.loop:
            log(f"{size} {model}: loop and floor ...")
            measure = functools.partial(
                loop_side_by_side, model, (h, w), other, args.batch_size, args.loop_rounds
            )
            figures = repeated(repeat, measure)
            emit(image_size=size, augment="train", against=args.against, **figures)


if __name__ == "__main__":
    sys.exit(main())
