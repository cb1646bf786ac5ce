"""Seconds of the data layer on a full-size demo set: synth, ``hpo data check``, cache build/open.

Draws a demo data set of real size (2,700 people = 18,900 training images, 12,600 eval images)
unless ``--root`` already holds one, then times ``check_data`` (every image decoded), building
the decoded-image cache cold and opening it warm, and the grouped k-fold split.

    python benchmarks/bench_data.py --root /tmp/hpo-bench --profiles 2700 --eval-images 12600
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from hpo.config import DataConfig
from hpo.data import check_data, kfold_splits, load_images, load_samples
from hpo.demo import make_demo_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(tempfile.gettempdir()) / "hpo-bench")
    parser.add_argument("--profiles", type=int, default=2700)
    parser.add_argument("--eval-images", type=int, default=12600)
    parser.add_argument("--size", type=int, nargs=2, default=[128, 96], metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    timings: dict[str, float | int | str] = {"cpus": os.cpu_count() or 1}
    if not (args.root / "train").exists():
        start = time.perf_counter()
        make_demo_data(args.root, args.profiles, args.seed, eval_images=args.eval_images)
        timings["synth_s"] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    report = check_data(args.root)
    timings["check_s"] = round(time.perf_counter() - start, 2)
    timings["check_images"] = report.images + (report.eval_images or 0)
    timings["check_problems"] = len(report.problems)

    samples = load_samples(DataConfig(root=args.root))
    start = time.perf_counter()
    kfold_splits(samples, 5, seed=0)
    timings["kfold_5_s"] = round(time.perf_counter() - start, 3)

    size = (args.size[0], args.size[1])
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        load_images(samples.paths, size, cache_dir=Path(cache))
        timings["cache_build_s"] = round(time.perf_counter() - start, 2)
        start = time.perf_counter()
        warm = load_images(samples.paths, size, cache_dir=Path(cache))
        timings["cache_open_s"] = round(time.perf_counter() - start, 3)
        timings["cache_mb"] = round(warm.array.nbytes / 2**20)
    timings["train_images"] = len(samples)
    print(json.dumps(timings))


if __name__ == "__main__":
    main()
