"""Seconds of the data layer on a full-size demo set: synth, ``hpo data check``, cache build/open.

Draws a demo data set of real size (2,700 people = 18,900 training images, 12,600 eval images)
unless ``--root`` already holds one (``synth_s``, timed once: the drawing is set-up), then
times ``check_data`` (every image decoded, ``check_s``), the grouped k-fold split
(``kfold_5_s``), building the decoded-image cache cold (``cache_build_s``, a fresh cache each
run) and opening it warm (``cache_open_s``): each the median of ``--repeat`` runs, with
``_min`` and ``_max``.

    python benchmarks/bench_data.py --quick        # 40 people, 64x48
    python benchmarks/bench_data.py --root /tmp/hpo-bench --profiles 2700 --eval-images 12600
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from _common import Emitter, demo_data, parser, repeated, repeats

from hpo.config import DataConfig
from hpo.data import check_data, kfold_splits, load_images, load_samples


def measure_once(root: Path, size: tuple[int, int]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    report = check_data(root)
    figures["check_s"] = round(time.perf_counter() - start, 2)
    figures["check_images"] = report.images + (report.eval_images or 0)
    figures["check_problems"] = len(report.problems)

    samples = load_samples(DataConfig(root=root))
    start = time.perf_counter()
    kfold_splits(samples, 5, seed=0)
    figures["kfold_5_s"] = round(time.perf_counter() - start, 3)

    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        load_images(samples.paths, size, cache_dir=Path(cache))
        figures["cache_build_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        warm = load_images(samples.paths, size, cache_dir=Path(cache))
        figures["cache_open_s"] = round(time.perf_counter() - start, 3)
        figures["cache_mb"] = round(warm.array.nbytes / 2**20)
    figures["train_images"] = len(samples)
    return figures


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--root", type=Path, default=None, help="demo data root (drawn if missing)")
    p.add_argument("--profiles", type=int, default=None)
    p.add_argument("--eval-images", type=int, default=None)
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    profiles = args.profiles or (40 if args.quick else 2700)
    eval_images = args.eval_images or (140 if args.quick else 12600)
    height, width = args.size or ([64, 48] if args.quick else [128, 96])
    root = args.root or Path(tempfile.gettempdir()) / f"hpo-bench-{profiles}"
    emit = Emitter("data", args.out, quick=args.quick, image_size=[height, width])

    synth: dict[str, Any] = {}
    if not (root / "train").exists():
        start = time.perf_counter()
        demo_data(root, profiles, args.seed, eval_images=eval_images)
        synth["synth_s"] = round(time.perf_counter() - start, 2)
    emit(**synth, **repeated(repeats(args), lambda _run: measure_once(root, (height, width))))


if __name__ == "__main__":
    main()
