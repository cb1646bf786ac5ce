"""Every GPU figure in one call: environment, correctness, loop against floor, data path, workers.

Run on a machine with one (or more) CUDA GPUs, with no network needed:

    python benchmarks/gpu_check.py --out gpu-check/

In at most ``--budget`` seconds of wall time (default 480) it writes, as JSON lines
(``gpu_check.jsonl``, also on stdout) and a markdown table (``gpu_check.md``), one record per
step; a step that would not fit in the time left is recorded as ``skipped`` with the reason,
one that fails as ``failed`` with its error, and the rest still run:

- ``environment``: GPU name, memory, compute capability, driver, torch, CUDA and cuDNN versions,
  the autocast dtype the loop will use;
- ``train``: a 2-epoch ``hpo train`` on the demo data at 256x192 with resnet18, AMP and
  channels_last on: a finite loss and a run directory written;
- ``predict``: ``hpo predict --tta`` of that run on the demo's eval images;
- ``loop`` (per model: resnet18, efficientnet_b0, convnext_tiny at 256x192, batch 64, AMP and
  channels_last on and off): training images/s of the hpo loop (``fit``) against the floor,
  the same model stepping on ready tensors on the GPU; ``loop_over_floor`` is the goal's ratio;
- ``data_path``: the same training step fed by the GPU-resident cache with GPU augmentation
  against a plain PIL + DataLoader loader (8 workers), images/s;
- ``workers``: ``hpo run --devices all`` with 1 and 2 workers per GPU on a short demo study,
  trials per minute;
- ``summary``: wall time and what was skipped or failed.

Every record of a step has the same keys whatever its outcome, and ``--smoke`` (CPU, tiny
sizes, a few seconds per step; the test suite runs it) writes the same keys as a GPU run.
Peak GPU memory (``peak_mem_gib``) is torch's peak allocation in this process for in-process
steps and the most memory in use on the GPUs (all processes) while ``workers`` runs; None on
the CPU. The exit code is 1 when any step failed.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import ROOT, Emitter, demo_data, log, parser, step_setup, sync
from _common import train_step as one_step

GIB = float(1 << 30)

# Every step's keys besides the common ones (bench, step, status, reason, seconds and the
# Emitter's load_avg, cpus, time): the same in a GPU run and in --smoke.
KEYS: dict[str, tuple[str, ...]] = {
    "environment": (
        "device", "gpu_name", "gpu_count", "gpu_memory_gib", "capability", "driver", "torch",
        "cuda", "cudnn", "amp_dtype", "python", "smoke", "budget_s",
    ),
    "train": (
        "model", "image_size", "epochs", "images", "amp", "channels_last", "final_loss",
        "finite", "run_written", "peak_mem_gib",
    ),
    "predict": ("tta", "images", "rows", "images_per_s", "peak_mem_gib"),
    "loop": (
        "model", "image_size", "batch_size", "amp_channels_last", "images", "loop_images_per_s",
        "floor_images_per_s", "loop_over_floor", "peak_mem_gib",
    ),
    "data_path": (
        "model", "image_size", "batch_size", "images", "naive_workers", "cached_images_per_s",
        "naive_images_per_s", "cached_over_naive", "peak_mem_gib",
    ),
    "workers": (
        "workers_per_gpu", "gpus", "trials", "wall_s", "trials_per_minute", "peak_mem_gib",
    ),
    "summary": ("wall_s", "ok", "skipped", "failed"),
}  # fmt: skip
COMMON = ("step", "status", "reason", "seconds")


@dataclass(frozen=True)
class Sizes:
    """What a run measures: the GPU sizes of issue 24, or the tiny CPU ones of ``--smoke``."""

    device: str
    profiles: int  # demo people (7 training images each)
    image_size: tuple[int, int]
    train_model: str
    models: tuple[str, ...]
    batch_size: int
    loop_images: int  # training images per timed loop epoch
    naive_workers: int
    study_size: tuple[int, int]
    study_epochs: int
    study_trials: int
    worker_counts: tuple[int, ...]
    # Rough seconds per step, to skip what would not fit in the time left.
    estimates: dict[str, float] = field(default_factory=dict)


GPU = Sizes(
    device="cuda",
    profiles=200,
    image_size=(256, 192),
    train_model="resnet18",
    models=("resnet18", "efficientnet_b0", "convnext_tiny"),
    batch_size=64,
    loop_images=1024,
    naive_workers=8,
    study_size=(128, 96),
    study_epochs=3,
    study_trials=8,
    worker_counts=(1, 2),
    estimates={"train": 45, "predict": 20, "loop": 25, "data_path": 40, "workers": 60},
)
SMOKE = Sizes(
    device="cpu",
    profiles=10,  # the study's 5 folds need 5 people at least
    image_size=(32, 24),
    train_model="small_cnn",
    models=("small_cnn",),
    batch_size=8,
    loop_images=16,
    naive_workers=0,
    study_size=(32, 24),
    study_epochs=1,
    study_trials=1,
    worker_counts=(1, 2),
    estimates={"train": 6, "predict": 4, "loop": 2, "data_path": 3, "workers": 10},
)


class Clock:
    """The script's own budget: how much is left, and whether a step still fits."""

    def __init__(self, budget: float) -> None:
        self.start = time.perf_counter()
        self.budget = budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()

    def fits(self, estimate: float) -> bool:
        return estimate <= self.left()


class Check:
    """Runs the steps, emitting one record each with the step's full set of keys."""

    def __init__(self, emit: Emitter, clock: Clock, sizes: Sizes) -> None:
        self.emit = emit
        self.clock = clock
        self.sizes = sizes
        self.records: list[dict[str, Any]] = []

    def record(
        self, step: str, status: str, reason: str | None, seconds: float, **values: Any
    ) -> None:
        unknown = set(values) - set(KEYS[step])
        assert not unknown, f"{step}: keys {sorted(unknown)} are not in KEYS"
        row = {"step": step, "status": status, "reason": reason, "seconds": round(seconds, 2)}
        row.update({key: values.get(key) for key in KEYS[step]})
        self.records.append(self.emit(**row))

    def step(
        self, step: str, measure: Callable[[], dict[str, Any]], **known: Any
    ) -> dict[str, Any] | None:
        """Run ``measure`` if its estimate fits the time left; record ok, skipped or failed."""
        estimate = self.sizes.estimates[step]
        if not self.clock.fits(estimate):
            reason = (
                f"would not fit: about {estimate:.0f} s needed, {self.clock.left():.0f} s left"
            )
            log(f"{step}: skipped ({reason})")
            self.record(step, "skipped", reason, 0.0, **known)
            return None
        start = time.perf_counter()
        try:
            values = measure()
        except subprocess.TimeoutExpired:
            reason = f"ran out of the budget after {time.perf_counter() - start:.0f} s"
            log(f"{step}: skipped ({reason})")
            self.record(step, "skipped", reason, time.perf_counter() - start, **known)
            return None
        except Exception as exc:  # one failed step must not cost the other figures
            message = f"{type(exc).__name__}: {exc}".strip().splitlines()
            reason = message[-1][:500] if message else type(exc).__name__
            log(f"{step}: failed ({reason})")
            self.record(step, "failed", reason, time.perf_counter() - start, **known)
            return None
        seconds = time.perf_counter() - start
        log(f"{step}: ok in {seconds:.1f} s {json.dumps({**known, **values}, default=str)}")
        self.record(step, "ok", None, seconds, **{**known, **values})
        return values


# ---------------------------------------------------------------------------------------------
# Steps


def environment(sizes: Sizes, budget: float, smoke: bool) -> dict[str, Any]:
    import torch

    from hpo.train.loop import amp_dtype

    device = torch.device(sizes.device)
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "python": platform.python_version(),
        "smoke": smoke,
        "budget_s": budget,
        "gpu_count": torch.cuda.device_count() if device.type == "cuda" else 0,
    }
    dtype = amp_dtype(device, True)
    info["amp_dtype"] = None if dtype is None else str(dtype).removeprefix("torch.")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu_name=props.name,
            gpu_memory_gib=round(props.total_memory / GIB, 2),
            capability=f"{props.major}.{props.minor}",
            driver=_driver_version(),
        )
    return info


def _driver_version() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    with contextlib.suppress(subprocess.SubprocessError, OSError):
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
        return out.strip().splitlines()[0] if out.strip() else None
    return None


def _config(sizes: Sizes, data: Path, model: str, **train: Any) -> Any:
    from hpo.config import train_config_from_dict

    raw = {
        "data": {"format": "mask", "root": str(data), "image_size": list(sizes.image_size)},
        "train": {
            "model": {"name": model},
            "epochs": 2,
            "batch_size": sizes.batch_size,
            "optimizer": {"name": "adamw", "lr": 0.001},
            "scheduler": {"name": "cosine"},
            "kfold": {"n_splits": 5, "folds": 1},
            "amp": True,
            "channels_last": True,
            **train,
        },
    }
    return train_config_from_dict(raw, "gpu_check")


@contextlib.contextmanager
def _peak(device: Any) -> Iterator[dict[str, float | None]]:
    """``{"peak_mem_gib": ...}`` of this process's CUDA allocations within the block."""
    import torch

    out: dict[str, float | None] = {"peak_mem_gib": None}
    on_cuda = device.type == "cuda"
    if on_cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield out
    if on_cuda:
        out["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / GIB, 3)


def train_step(sizes: Sizes, data: Path, work: Path) -> dict[str, Any]:
    """``hpo train`` in this process (its own CLI entry point): finite loss, run written."""
    import torch
    import yaml

    from hpo.cli import main

    config_path = work / "train.yaml"
    config = _config(sizes, data, sizes.train_model)
    config_path.write_text(yaml.safe_dump(config.to_dict()))
    run_dir = work / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    device = torch.device(sizes.device)
    with _peak(device) as peak:
        code = _cli(
            main,
            "train",
            "--config",
            str(config_path),
            "--out",
            str(run_dir),
            "--device",
            sizes.device,
            "--quiet",
        )
    if code != 0:
        raise RuntimeError(f"hpo train exited {code}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    result = metrics["results"][0]
    loss = float(result["train_loss"])
    finite = bool(torch.isfinite(torch.tensor(loss)))
    written = metrics["status"] == "complete" and (run_dir / "fold_0" / "model.pt").is_file()
    if not (finite and written):
        raise RuntimeError(f"loss {loss}, run written: {written}")
    return {
        "model": sizes.train_model,
        "image_size": list(sizes.image_size),
        "epochs": 2,
        "images": metrics["num_samples"],
        "amp": True,
        "channels_last": True,
        "final_loss": round(loss, 4),
        "finite": finite,
        "run_written": written,
        **peak,
    }


def predict_step(sizes: Sizes, data: Path, work: Path) -> dict[str, Any]:
    import torch

    from hpo.cli import main

    run_dir, out = work / "run", work / "submission.csv"
    if not (run_dir / "metrics.json").is_file():
        raise RuntimeError("no run to predict with: the train step did not write one")
    device = torch.device(sizes.device)
    start = time.perf_counter()
    with _peak(device) as peak:
        code = _cli(
            main,
            "predict",
            "--run",
            str(run_dir),
            "--data",
            str(data / "eval"),
            "--tta",
            "--out",
            str(out),
            "--device",
            sizes.device,
        )
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"hpo predict exited {code}")
    rows = max(0, len(out.read_text().splitlines()) - 1)
    return {
        "tta": True,
        "images": rows,
        "rows": rows,
        "images_per_s": round(rows / seconds, 1),
        **peak,
    }


def _cli(main: Callable[[list[str]], Any], *args: str) -> int:
    """``hpo ARGS`` in this process; its text goes to stderr (stdout carries JSON lines)."""
    try:
        with contextlib.redirect_stdout(sys.stderr):
            result = main(list(args))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return result if isinstance(result, int) else 0


def _loaded(sizes: Sizes, data: Path) -> Any:
    from hpo.data import load_training_data

    return load_training_data(_config(sizes, data, sizes.train_model).data)


def loop_step(sizes: Sizes, loaded: Any, model: str, fast: bool) -> dict[str, Any]:
    """Images/s of the second epoch of ``fit`` (no validation) against the floor."""
    import numpy as np
    import torch
    from _common import floor_epoch

    from hpo.train.loop import fit

    device = torch.device(sizes.device)
    config = _config(sizes, Path("."), model, amp=fast, channels_last=fast)
    n = min(sizes.loop_images, len(loaded.samples))
    idx = np.arange(n)
    num_classes = loaded.samples.num_classes
    with _peak(device) as peak:
        result = fit(
            config,
            loaded.images.array,
            loaded.samples.labels,
            idx,
            None,
            device=device,
            num_classes=num_classes,
        )
        loop_s = result.history[-1].seconds  # the second epoch: warmed up
        del result
        floor_s = floor_epoch(config, n, num_classes, device, rounds=1)
    loop_ips, floor_ips = n / loop_s, n / floor_s
    return {
        "model": model,
        "image_size": list(sizes.image_size),
        "batch_size": sizes.batch_size,
        "amp_channels_last": fast,
        "images": n,
        "loop_images_per_s": round(loop_ips, 1),
        "floor_images_per_s": round(floor_ips, 1),
        "loop_over_floor": round(floor_ips / loop_ips, 3),
        **peak,
    }


def data_path_step(sizes: Sizes, loaded: Any, cached_ips: float | None) -> dict[str, Any]:
    """The same model and step fed by a plain PIL + DataLoader loader, against the cache."""
    import torch

    device = torch.device(sizes.device)
    n = min(sizes.loop_images, len(loaded.samples))
    with _peak(device) as peak:
        if cached_ips is None:  # the loop step was skipped or failed: measure it here
            cached_ips = loop_step(sizes, loaded, sizes.models[0], True)["loop_images_per_s"]
        naive_ips = _naive_epoch(sizes, loaded, n, device)
    assert cached_ips is not None
    return {
        "model": sizes.models[0],
        "image_size": list(sizes.image_size),
        "batch_size": sizes.batch_size,
        "images": n,
        "naive_workers": sizes.naive_workers,
        "cached_images_per_s": round(cached_ips, 1),
        "naive_images_per_s": round(naive_ips, 1),
        "cached_over_naive": round(cached_ips / naive_ips, 2),
        **peak,
    }


class _PilImages:
    """Decode, crop-free resize, flip and normalize each image with PIL and torchvision."""

    def __init__(self, paths: list[Path], labels: Any, size: tuple[int, int]) -> None:
        self.paths, self.labels, self.size = paths, labels, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        import torchvision.transforms.v2.functional as TF
        from PIL import Image

        from hpo.data.transforms import IMAGENET_MEAN, IMAGENET_STD

        with Image.open(self.paths[i]) as image:
            image = image.convert("RGB").resize((self.size[1], self.size[0]), Image.BILINEAR)
        x = TF.to_dtype(TF.pil_to_tensor(image), scale=True)
        if i % 2:
            x = TF.horizontal_flip(x)
        return TF.normalize(x, list(IMAGENET_MEAN), list(IMAGENET_STD)), int(self.labels[i])


def _naive_epoch(sizes: Sizes, loaded: Any, n: int, device: Any) -> float:
    """Images/s of one epoch (after a warm-up epoch) of the loop's model, precision and memory
    format (``_common.step_setup``), fed by a DataLoader: the ratio credits neither AMP nor the
    layout to the data path."""
    from torch.utils.data import DataLoader

    config = _config(sizes, Path("."), sizes.models[0])
    setup = step_setup(config, loaded.samples.num_classes, device)
    dataset = _PilImages(
        list(loaded.samples.paths[:n]), loaded.samples.labels[:n], sizes.image_size
    )
    loader = DataLoader(
        dataset,
        batch_size=sizes.batch_size,
        shuffle=True,
        num_workers=sizes.naive_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=sizes.naive_workers > 0,
    )
    seconds = []
    for _ in range(2):  # the first epoch starts the workers and warms cuDNN up
        sync(device)
        start = time.perf_counter()
        for x, y in loader:
            x = x.to(device, non_blocking=True).contiguous(memory_format=setup["memory_format"])
            one_step(setup, x, y.to(device, non_blocking=True), device)
        sync(device)
        seconds.append(time.perf_counter() - start)
    return n / seconds[-1]


class _GpuMemoryWatch:
    """The most memory in use on the GPUs (every process) while the block runs."""

    def __init__(self, on_cuda: bool) -> None:
        self.on_cuda = on_cuda
        self.peak: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _GpuMemoryWatch:
        if self.on_cuda:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.on_cuda:
            self._stop.set()
            self._thread.join()

    def _watch(self) -> None:
        import torch

        while not self._stop.is_set():
            used = 0
            for k in range(torch.cuda.device_count()):
                free, total = torch.cuda.mem_get_info(k)
                used = max(used, total - free)
            self.peak = max(self.peak or 0.0, round(used / GIB, 3))
            self._stop.wait(0.5)


def _release(sizes: Sizes) -> None:
    import gc

    import torch

    from hpo.train import resident

    resident.clear()
    gc.collect()
    if sizes.device == "cuda":
        torch.cuda.empty_cache()


def workers_step(
    sizes: Sizes, data: Path, work: Path, per_gpu: int, timeout: float
) -> dict[str, Any]:
    """``hpo run`` of a short demo study with ``per_gpu`` workers per GPU (--devices all); on
    the CPU, ``--workers`` of the same count: the same supervisor and children."""
    import torch

    db = work / f"study-{per_gpu}.db"
    db.unlink(missing_ok=True)
    on_cuda = sizes.device == "cuda"
    gpus = torch.cuda.device_count() if on_cuda else 0
    spread = (
        ["--devices", "all", "--workers-per-device", str(per_gpu)]
        if on_cuda
        else ["--workers", str(per_gpu)]
    )
    height, width = sizes.study_size
    sets = [
        f"data.root={data}",
        f"data.image_size=[{height},{width}]",
        f"train.epochs={sizes.study_epochs}",
        "study.sampler.seed=0",
    ]
    trials = sizes.study_trials * max(1, per_gpu * max(gpus, 1))
    argv = [
        sys.executable,
        "-m",
        "hpo",
        "run",
        "--config",
        str(ROOT / "studies" / "mask-clf.yaml"),
        "--study",
        "gpu-check",
        "--n-trials",
        str(trials),
        "--storage",
        f"sqlite:///{db}",
        "--quiet",
        *spread,
        *(a for s in sets for a in ("--set", s)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    with _GpuMemoryWatch(on_cuda) as watch:
        proc = subprocess.run(
            argv, cwd=work, env=env, capture_output=True, text=True, timeout=max(1.0, timeout)
        )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"hpo run exited {proc.returncode}: {(proc.stderr or '')[-400:]}")
    return {
        "workers_per_gpu": per_gpu,
        "gpus": gpus,
        "trials": trials,
        "wall_s": round(wall, 1),
        "trials_per_minute": round(60 * trials / wall, 2),
        "peak_mem_gib": watch.peak,
    }


# ---------------------------------------------------------------------------------------------


def markdown(records: list[dict[str, Any]]) -> str:
    """One table per step: its records as rows, its keys as columns."""
    lines = ["# GPU check", ""]
    for step in KEYS:
        rows = [r for r in records if r["step"] == step]
        if not rows:
            continue
        columns = ["status", *KEYS[step], "seconds", "reason"]
        lines += [f"## {step}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            cells = ["" if row.get(c) is None else str(row.get(c)) for c in columns]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    p = parser(__doc__)
    p.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: the same keys, fast")
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        help="wall seconds for the whole check (default 480; --smoke 120)",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="an existing demo data set (hpo data synth) instead of drawing one",
    )
    p.add_argument(
        "--work",
        type=Path,
        default=None,
        help="keep the demo data, runs and studies here (default: under --out)",
    )
    args = p.parse_args()
    if args.out is None:
        p.error("--out DIR is required")
    sizes = SMOKE if args.smoke else GPU
    budget = args.budget if args.budget is not None else (120.0 if args.smoke else 480.0)
    clock = Clock(budget)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    jsonl = out / "gpu_check.jsonl"
    jsonl.unlink(missing_ok=True)
    work = args.work or out / "work"
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HPO_CACHE_DIR", str(work / "cache"))
    if args.smoke:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    if args.smoke:
        torch.set_num_threads(1)
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA GPU here; --smoke runs the same steps on the CPU")
    from hpo.train.device import configure_backends

    configure_backends(torch.device(sizes.device))
    check = Check(Emitter("gpu_check", jsonl), clock, sizes)
    check.record("environment", "ok", None, 0.0, **environment(sizes, budget, args.smoke))

    data = args.data or demo_data(work / "demo", sizes.profiles)
    check.step("train", lambda: train_step(sizes, data, work))
    check.step("predict", lambda: predict_step(sizes, data, work))

    loaded = _loaded(sizes, data)
    cached: float | None = None
    for model in sizes.models:
        for fast in (True, False):
            values = check.step(
                "loop",
                lambda m=model, f=fast: loop_step(sizes, loaded, m, f),
                model=model,
                amp_channels_last=fast,
            )
            if values and model == sizes.models[0] and fast:
                cached = values["loop_images_per_s"]
    check.step("data_path", lambda: data_path_step(sizes, loaded, cached))
    _release(sizes)  # the workers step's processes need the GPU memory this one holds
    for per_gpu in sizes.worker_counts:
        check.step(
            "workers",
            lambda k=per_gpu: workers_step(sizes, data, work, k, clock.left() - 5),
            workers_per_gpu=per_gpu,
        )

    statuses = [r["status"] for r in check.records]
    skipped = [f"{r['step']}" for r in check.records if r["status"] == "skipped"]
    failed = [f"{r['step']}" for r in check.records if r["status"] == "failed"]
    check.record(
        "summary",
        "ok" if not failed else "failed",
        None,
        clock.elapsed(),
        wall_s=round(clock.elapsed(), 1),
        ok=statuses.count("ok"),
        skipped=skipped,
        failed=failed,
    )
    (out / "gpu_check.md").write_text(markdown(check.records))
    log(f"wrote {jsonl} and {out / 'gpu_check.md'} in {clock.elapsed():.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
