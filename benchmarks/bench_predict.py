"""Images per second of ``hpo predict``'s inference (``ensemble_proba``), with and without TTA.

Times the forward passes only (decoding is cached and measured by the data benchmarks) on
random uint8 images, for an ensemble of ``--models`` freshly built models.

    python benchmarks/bench_predict.py --model small_cnn --size 128 96 --images 2048 --models 5
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from hpo.predict import ensemble_proba
from hpo.train.device import configure_backends, resolve_device
from hpo.train.models import MODELS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="small_cnn")
    parser.add_argument("--size", type=int, nargs=2, default=[128, 96], metavar=("H", "W"))
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--models", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--classes", type=int, default=18)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    device = resolve_device(args.device)
    configure_backends(device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, *args.size, 3), dtype=np.uint8)
    models = [MODELS.create(args.model, num_classes=args.classes) for _ in range(args.models)]
    for m in models:
        m.to(device)
    results = {}
    for tta in (False, True):
        ensemble_proba(models, images[: args.batch_size], device=device, tta=tta)  # warm-up
        best = float("inf")
        for _ in range(args.repeat):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            ensemble_proba(models, images, device=device, tta=tta, batch_size=args.batch_size)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - start)
        results["tta" if tta else "plain"] = round(args.images / best, 1)
    report = {
        "device": str(device),
        "model": args.model,
        "models": args.models,
        "image_size": args.size,
        "images": args.images,
        "images_per_s": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
