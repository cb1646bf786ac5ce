"""Seconds per epoch: the naive JPEG loader, hpo's loop on the decoded cache, and the floor.

(a) ``naive``: what users run today, like the competition baseline's ``MaskBaseDataset``: a
    ``Dataset`` that opens each image with PIL and resizes it every epoch (Resize, ToTensor,
    Normalize), through a ``DataLoader`` with 2 workers; a plain train step on the model.
(b) ``cached``: ``hpo.train.fit`` on the decoded-image cache (its default augmentation on).
(c) ``floor``: the same model, loss and optimizer stepping over ready batches on the device.
All three train with the loop's precision (AMP where it uses it) and memory format
(``_common.step_setup``), so the ratios measure the data path. Each is one epoch over the same
demo images after a warm-up epoch (best of ``--rounds``), and the three are measured
``--repeat`` times in turn: every figure is the median of the repeats with its min and max.
The floor is also timed in channels_last and in contiguous memory format (``cl_speedup`` is
contiguous over channels_last: above 1 means channels_last is faster on this device).

    python benchmarks/bench_data_path.py --quick
    python benchmarks/bench_data_path.py --models small_cnn mobilenet_v3_small resnet18 \\
        --sizes 64x48 128x96 --images 1024
"""

from __future__ import annotations

import functools
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import (
    Emitter,
    demo_data,
    floor_epoch,
    log,
    parser,
    repeated,
    repeats,
    step_setup,
    sync,
    train_step,
    workdir,
)
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from hpo.components import MODELS
from hpo.config import DataConfig, train_config_from_dict
from hpo.data import load_images, load_samples
from hpo.train import configure_backends, fit, resolve_device
from hpo.train.device import use_channels_last

# The competition baseline's normalization (MaskBaseDataset).
_MEAN = (0.548, 0.504, 0.479)
_STD = (0.237, 0.247, 0.246)
NUM_CLASSES = 18


class NaiveDataset(Dataset):  # type: ignore[type-arg]
    """Opens and resizes the JPEG on every access, like the baseline's ``MaskBaseDataset``."""

    def __init__(self, paths: list[Path], labels: np.ndarray, size: tuple[int, int]) -> None:
        self.paths = paths
        self.labels = labels
        self.transform = transforms.Compose(
            [
                transforms.Resize(size, Image.BILINEAR),
                transforms.ToTensor(),
                transforms.Normalize(mean=_MEAN, std=_STD),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = Image.open(self.paths[i]).convert("RGB")
        return self.transform(image), int(self.labels[i])


def naive_epoch(config, paths, labels, device, rounds: int, workers: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds of one epoch through the naive loader (best of ``rounds`` after a warm-up).

    The step is the floor's (``_common.train_step``): same precision and memory format.
    """
    setup = step_setup(config, NUM_CLASSES, device)
    loader = DataLoader(
        NaiveDataset(paths, labels, tuple(config.data.image_size)),
        batch_size=config.train.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=False,
    )
    times = []
    for _ in range(rounds + 1):
        start = time.perf_counter()
        for x, y in loader:
            x = x.to(device).contiguous(memory_format=setup["memory_format"])
            train_step(setup, x, y.to(device), device)
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def cached_epoch(config, images: np.ndarray, labels: np.ndarray, device, rounds: int) -> float:  # type: ignore[no-untyped-def]
    """Seconds of one epoch of ``hpo.train.fit`` (best of ``rounds`` after a warm-up)."""
    config = config.model_copy(
        update={"train": config.train.model_copy(update={"epochs": rounds + 1})}
    )
    n = len(labels)
    result = fit(
        config, images, labels, np.arange(n), None, device=device, num_classes=NUM_CLASSES
    )
    return min(r.seconds for r in result.history[1:])


def measure_once(  # type: ignore[no-untyped-def]
    config, label: str, paths, labels, images, device, rounds: int, args, _run: int
) -> dict[str, object]:
    """One run of the three epochs (and the floor in both memory formats): seconds, ratios."""
    take = len(labels)
    figures: dict[str, object] = {}
    if not args.formats_only:
        log(f"{label}: naive ...")
        naive = naive_epoch(config, paths, labels, device, rounds, args.workers)
        log(f"{label}: cached ...")
        cached = cached_epoch(config, images, labels, device, rounds)
        log(f"{label}: floor ...")
        floor = floor_epoch(config, take, NUM_CLASSES, device, rounds)
        figures |= {
            "naive_s": round(naive, 3),
            "cached_s": round(cached, 3),
            "floor_s": round(floor, 3),
            "cached_over_floor": round(cached / floor, 3),
            "naive_over_cached": round(naive / cached, 3),
            "naive_over_floor": round(naive / floor, 3),
        }
    if not args.no_floor_formats:
        contiguous = floor_epoch(config, take, NUM_CLASSES, device, rounds, channels_last=False)
        cl = floor_epoch(config, take, NUM_CLASSES, device, rounds, channels_last=True)
        figures |= {
            "floor_contiguous_s": round(contiguous, 3),
            "floor_channels_last_s": round(cl, 3),
            "cl_speedup": round(contiguous / cl, 3),
        }
    return figures


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--models", nargs="+", default=None)
    p.add_argument("--sizes", nargs="+", default=None, help="HxW, e.g. 64x48 128x96")
    p.add_argument("--images", type=int, default=None, help="training images per epoch")
    p.add_argument("--rounds", type=int, default=None, help="timed epochs after a warm-up")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the naive path")
    p.add_argument("--device", default="auto")
    p.add_argument("--data", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument("--no-floor-formats", action="store_true", help="skip the channels_last A/B")
    p.add_argument(
        "--formats-only", action="store_true", help="only the floor's channels_last A/B"
    )
    args = p.parse_args()
    quick = args.quick
    models = args.models or (
        ["small_cnn", "mobilenet_v3_small"]
        if quick
        else ["small_cnn", "mobilenet_v3_small", "resnet18"]
    )
    sizes = [tuple(int(v) for v in s.split("x")) for s in (args.sizes or ["64x48", "128x96"])]
    if quick and args.sizes is None:
        sizes = [(64, 48)]
    n_images = args.images or (256 if quick else 1024)
    rounds = args.rounds or (1 if quick else 2)
    repeat = repeats(args)

    device = resolve_device(args.device)
    configure_backends(device)
    emit = Emitter(
        "data_path", args.out, device=str(device), threads=torch.get_num_threads(), quick=quick
    )
    profiles = -(-n_images // 7)
    with workdir(None) as tmp:
        root = demo_data(args.data or tmp / "demo", profiles)
        samples = load_samples(DataConfig(root=root))
        take = min(n_images, len(samples))
        paths = [Path(p) for p in samples.paths[:take]]
        labels = np.asarray(samples.labels[:take], dtype=np.int64)
        for size in sizes:
            with tempfile.TemporaryDirectory() as cache:
                images = load_images(paths, size, cache_dir=Path(cache)).array
                images = np.ascontiguousarray(images)
            for model in models:
                config = train_config_from_dict(
                    {
                        "data": {"image_size": list(size)},
                        "train": {
                            "model": model,
                            "batch_size": args.batch_size,
                            "scheduler": {"name": "constant"},
                        },
                    },
                    "bench",
                )
                label = f"{model} {size[0]}x{size[1]}"
                record: dict[str, object] = {
                    "model": model,
                    "image_size": list(size),
                    "images": take,
                    "channels_last": use_channels_last(
                        device, MODELS.info(model).cpu_channels_last
                    ),
                }

                measure = functools.partial(
                    measure_once, config, label, paths, labels, images, device, rounds, args
                )
                record |= repeated(repeat, measure)
                emit(**record)


if __name__ == "__main__":
    main()
