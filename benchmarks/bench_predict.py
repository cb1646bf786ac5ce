"""Images per second of ``hpo predict``'s inference (``ensemble_proba``), with and without TTA.

Times the forward passes only (decoding is cached and measured by the data benchmarks) on
random uint8 images, for an ensemble of ``--models`` freshly built models. One JSON line per
``tta`` setting; ``images_per_s`` is the median of ``--repeat`` timed passes over all images
(after a warm-up pass), with ``_min`` and ``_max``.

    python benchmarks/bench_predict.py --quick
    python benchmarks/bench_predict.py --model small_cnn --size 128 96 --images 2048 --models 5
"""

from __future__ import annotations

import time

import numpy as np
from _common import Emitter, parser, repeated, repeats, sync

from hpo.predict import ensemble_proba
from hpo.train.device import configure_backends, resolve_device
from hpo.train.models import MODELS


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--images", type=int, default=None)
    p.add_argument("--models", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--classes", type=int, default=18)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    size = args.size or ([64, 48] if args.quick else [128, 96])
    n = args.images or (256 if args.quick else 1024)

    device = resolve_device(args.device)
    configure_backends(device)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, *size, 3), dtype=np.uint8)
    models = [MODELS.create(args.model, num_classes=args.classes) for _ in range(args.models)]
    for m in models:
        m.to(device)
    emit = Emitter(
        "predict",
        args.out,
        quick=args.quick,
        device=str(device),
        model=args.model,
        models=args.models,
        image_size=size,
        images=n,
    )
    for tta in (False, True):
        ensemble_proba(models, images[: args.batch_size], device=device, tta=tta)  # warm-up

        def measure(_run: int, tta: bool = tta) -> dict[str, float]:
            sync(device)
            start = time.perf_counter()
            ensemble_proba(models, images, device=device, tta=tta, batch_size=args.batch_size)
            sync(device)
            return {"images_per_s": round(n / (time.perf_counter() - start), 1)}

        emit(tta=tta, **repeated(repeats(args), measure))


if __name__ == "__main__":
    main()
