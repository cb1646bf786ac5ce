"""Epoch time of ``hpo.train.fit`` against the model's own forward/backward floor.

The floor is the same model, loss and optimizer stepping over ready-made input: batches
already normalized on the device, so no slicing, augmentation or bookkeeping. The design goal
is an epoch within 10 % of it (ratio <= 1.10). Random pixels, so the numbers are about speed
only. Keys: ``loop_s`` (best epoch after a warm-up one), ``floor_s``, ``loop_over_floor``,
each the median of ``--repeat`` runs with ``_min`` and ``_max``.

    python benchmarks/bench_train.py --quick               # small_cnn, 64x48, 256 images
    python benchmarks/bench_train.py                       # small_cnn, 64x48, CPU or GPU
    python benchmarks/bench_train.py --model resnet18 --image-size 128 96 --n 4096 --device cuda
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from _common import Emitter, floor_epoch, log, parser, repeated, repeats

NUM_CLASSES = 18


def measure_once(config: Any, n: int, device: torch.device, _run: int) -> dict[str, Any]:
    """One fit and one floor: the best epoch seconds of each and their ratio."""
    from hpo.train import fit

    rng = np.random.default_rng(0)
    height, width = config.data.image_size
    images = rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, n)
    result = fit(
        config, images, labels, np.arange(n), None, device=device, num_classes=NUM_CLASSES
    )
    epochs = [r.seconds for r in result.history[1:]] or [result.history[0].seconds]
    loop = min(epochs)
    floor = floor_epoch(config, n, NUM_CLASSES, device, rounds=max(len(epochs), 2))
    log(f"  loop {loop:.3f} s, floor {floor:.3f} s, ratio {loop / floor:.3f} (goal <= 1.10)")
    return {
        "loop_s": round(loop, 3),
        "floor_s": round(floor, 3),
        "loop_over_floor": round(loop / floor, 3),
    }


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--image-size", type=int, nargs=2, default=[64, 48], metavar=("H", "W"))
    p.add_argument("--n", type=int, default=None, help="training images per epoch")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=None, help="loop epochs (first is warm-up)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--no-amp", action="store_true")
    p.add_argument("--no-augment", action="store_true")
    args = p.parse_args()
    n = args.n or (256 if args.quick else 1024)
    epochs = args.epochs or (2 if args.quick else 4)

    from hpo.config import train_config_from_dict
    from hpo.train import configure_backends, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configure_backends(device)
    augment = {"hflip": False, "crop_scale": 1.0, "color_jitter": 0.0} if args.no_augment else {}
    config = train_config_from_dict(
        {
            "data": {"image_size": list(args.image_size)},
            "train": {
                "model": args.model,
                "epochs": epochs,
                "batch_size": args.batch_size,
                "scheduler": {"name": "constant"},
                "augment": augment,
                "amp": not args.no_amp,
            },
        },
        "bench",
    )
    emit = Emitter(
        "train",
        args.out,
        quick=args.quick,
        device=str(device),
        threads=torch.get_num_threads(),
        model=args.model,
        image_size=list(args.image_size),
        images=n,
        batch_size=args.batch_size,
        amp=config.train.amp and device.type == "cuda",
        augment=not args.no_augment,
    )
    emit(**repeated(repeats(args), functools.partial(measure_once, config, n, device)))


if __name__ == "__main__":
    main()
