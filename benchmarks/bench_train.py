"""Epoch time of ``hpo.train.fit`` against the model's own forward/backward floor.

The floor is the same model, loss and optimizer stepping over ready-made input: one batch
already normalized on the device, so no slicing, augmentation or bookkeeping. The design goal
is an epoch within 10 % of it (ratio <= 1.10). Random pixels, so the numbers are about speed only.

    python benchmarks/bench_train.py                       # small_cnn, 64x48, CPU or GPU
    python benchmarks/bench_train.py --model resnet18 --image-size 128 96 --n 4096 --device cuda
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _common import floor_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--image-size", type=int, nargs=2, default=[64, 48], metavar=("H", "W"))
    parser.add_argument("--n", type=int, default=1024, help="training images per epoch")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4, help="loop epochs (first is warm-up)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--no-amp", action="store_true")
    parser.add_argument("--no-augment", action="store_true")
    args = parser.parse_args()

    from hpo.config import train_config_from_dict
    from hpo.train import configure_backends, fit, resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    configure_backends(device)
    num_classes = 18
    augment = {"hflip": False, "crop_scale": 1.0, "color_jitter": 0.0} if args.no_augment else {}
    config = train_config_from_dict(
        {
            "data": {"image_size": list(args.image_size)},
            "train": {
                "model": args.model,
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "scheduler": {"name": "constant"},
                "augment": augment,
                "amp": not args.no_amp,
            },
        },
        "bench",
    )
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.n, *args.image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, num_classes, args.n)

    result = fit(
        config, images, labels, np.arange(args.n), None, device=device, num_classes=num_classes
    )
    epochs = [r.seconds for r in result.history[1:]] or [result.history[0].seconds]
    loop = min(epochs)
    floor = floor_epoch(config, args.n, num_classes, device, rounds=max(len(epochs), 2))

    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    amp = config.train.amp and device.type == "cuda"
    print(
        f"device {device}{threads} | {args.model} {args.image_size[0]}x{args.image_size[1]} | "
        f"{args.n} images, batch {args.batch_size}, amp {amp}"
        f", augment {not args.no_augment}"
    )
    print(
        f"loop epoch   {loop:8.3f} s  ({args.n / loop:8.0f} img/s; best of the epochs after "
        f"a warm-up one: {', '.join(f'{t:.3f}' for t in epochs)})"
    )
    print(
        f"floor epoch  {floor:8.3f} s  ({args.n / floor:8.0f} img/s; forward+backward+step "
        f"on ready batches, best of rounds)"
    )
    print(f"ratio        {loop / floor:8.3f}     (goal <= 1.10)")


if __name__ == "__main__":
    main()
