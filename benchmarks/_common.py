"""Helpers shared by the benchmark scripts: JSON-line output, repeats, the CLI, demo data.

Every script prints one JSON object per line on stdout (human text goes to stderr) and tags
each line with the load average, because these machines are shared and noisy. Every script
takes ``--quick``, ``--out`` and ``--repeat N``: a timed figure is measured N times and
reported as the median with ``KEY_min`` and ``KEY_max`` beside it (``summarize``), since one
run on a shared machine decides nothing. hpo internals are imported here or at the top of each
script, in one place, so a rename is one edit.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

__all__ = [
    "ROOT",
    "Emitter",
    "demo_data",
    "export_best",
    "floor_epoch",
    "hpo",
    "hpo_command",
    "hpo_run",
    "log",
    "parser",
    "postgres_url",
    "repeated",
    "repeats",
    "run_processes",
    "score",
    "step_setup",
    "summarize",
    "sync",
    "train_and_score",
    "train_step",
    "window_ms",
    "workdir",
]


QUICK_REPEAT = 3


def parser(doc: str | None, *, full_repeat: int = QUICK_REPEAT) -> argparse.ArgumentParser:
    """An argument parser with the flags every script takes: ``--quick``, ``--out``, ``--repeat``.

    ``full_repeat`` is the default of ``--repeat`` without ``--quick`` (1 for scripts whose
    full mode already repeats over seeds or runs whole studies); with ``--quick`` it is 3.
    """
    p = argparse.ArgumentParser(
        description=(doc or "").splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a short run that checks the script")
    p.add_argument("--out", type=Path, default=None, help="also append the JSON lines here")
    p.add_argument(
        "--repeat",
        type=int,
        default=None,
        metavar="N",
        help=f"measure each figure N times; report the median, min and max "
        f"(default {QUICK_REPEAT} with --quick, else {full_repeat})",
    )
    p.set_defaults(full_repeat=full_repeat)
    return p


def repeats(args: argparse.Namespace) -> int:
    """The ``--repeat`` count of parsed ``args`` (its mode's default when not given)."""
    if args.repeat is not None:
        if args.repeat < 1:
            sys.exit(f"error: --repeat {args.repeat}: expected 1 or more")
        return int(args.repeat)
    return QUICK_REPEAT if args.quick else int(args.full_repeat)


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One record from the records of repeated runs of the same measurement.

    A key whose value is a number in every run, not the same in all, becomes the median of
    the runs with ``KEY_min`` and ``KEY_max`` beside it; any other value is kept as it is when
    the runs agree (a count, a name) and becomes the list of the runs' values when they do not.
    Ratios are computed per run before summarizing (the median of ratios, not the ratio of
    medians). ``repeat`` says how many runs there were.
    """
    out: dict[str, Any] = {"repeat": len(runs)}
    for key in runs[0]:
        values = [run.get(key) for run in runs]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if all(v == values[0] for v in values):
            out[key] = values[0]
        elif numeric:
            middle = statistics.median(values)
            out[key] = round(middle, 4) if isinstance(middle, float) else middle
            out[f"{key}_min"] = min(values)
            out[f"{key}_max"] = max(values)
        else:
            out[key] = values
    return out


def repeated(n: int, measure: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """``summarize`` of ``measure(k)`` for k in 0..n-1 (run one after the other)."""
    runs = []
    for k in range(n):
        if n > 1:
            log(f"  run {k + 1} of {n}")
        runs.append(measure(k))
    return summarize(runs)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Emitter:
    """Prints records as JSON lines (and appends them to ``out``), tagged with the machine load."""

    def __init__(self, bench: str, out: Path | None = None, **common: Any) -> None:
        self.bench = bench
        self.out = out
        self.common = common

    def __call__(self, **record: Any) -> dict[str, Any]:
        line = {
            "bench": self.bench,
            **self.common,
            **record,
            "load_avg": [round(v, 2) for v in os.getloadavg()],
            "cpus": os.cpu_count(),
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        text = json.dumps(line)
        print(text, flush=True)
        if self.out is not None:
            with self.out.open("a") as handle:
                handle.write(text + "\n")
        return line


def hpo_command(*args: str, env: dict[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The command line of ``python -m hpo ARGS`` and its environment (this tree on the path)."""
    return [sys.executable, "-m", "hpo", *args], {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        **(env or {}),
    }


def hpo(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, capture: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m hpo ARGS`` with this tree on the path; exits with its stderr on failure."""
    command, full_env = hpo_command(*args, env=env)
    proc = subprocess.run(command, cwd=cwd, env=full_env, capture_output=capture, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or "")[-3000:]
        sys.exit(f"hpo {' '.join(args)} failed ({proc.returncode}):\n{tail}")
    return proc


def hpo_run(
    db: Path,
    trials: int,
    sets: Sequence[str],
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
) -> float:
    """``hpo run --study mask-clf`` into the SQLite file ``db``; the wall seconds it took.

    ``args`` are more ``hpo run`` arguments (``--workers 2``). A ``db`` whose ``.json`` beside
    it says the same trials, ``--set`` values and arguments finished is kept and not run again
    (``--keep DIR`` of the scripts): its recorded seconds are returned.
    """
    done = db.with_suffix(".json")  # written once the study has all its trials
    record = {"trials": trials, "sets": list(sets)} | ({"args": list(args)} if args else {})
    if done.is_file():
        kept = json.loads(done.read_text())
        if {k: v for k, v in kept.items() if k != "wall_s"} == record:
            log(f"  kept from an earlier run: {db}")
            return float(kept["wall_s"])
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    hpo(
        "run", "--study", "mask-clf", "--n-trials", str(trials), "--storage", f"sqlite:///{db}",
        "--quiet", *(a for s in sets for a in ("--set", s)), *args, env=env,
    )  # fmt: skip
    wall = time.perf_counter() - start
    done.write_text(json.dumps({**record, "wall_s": wall}))
    return wall


def export_best(db: Path, config: Path) -> Path:
    """``hpo export`` of the best trial of the ``mask-clf`` study in the SQLite file ``db``."""
    hpo("export", "--study", "mask-clf", "--storage", f"sqlite:///{db}", "--out", str(config))
    return config


def score(run: Path, data: Path, tmp: Path, env: dict[str, str]) -> dict[str, float]:
    """``hpo predict`` on the eval images and ``hpo score`` against the answers."""
    submission = tmp / f"{run.name}.csv"
    hpo("predict", "--run", str(run), "--data", str(data / "eval"), "--out", str(submission),
        env=env)  # fmt: skip
    out = hpo(
        "score", "--pred", str(submission), "--truth", str(data / "eval" / "answers.csv"), "--json"
    ).stdout
    report = json.loads(out)
    return {
        "test_macro_f1": round(report["macro_f1"], 4),
        "test_accuracy": round(report["accuracy"], 4),
    }


def train_and_score(config: Path, tmp: Path, data: Path, env: dict[str, str]) -> dict[str, Any]:
    """``hpo train --full`` of ``config`` into ``tmp/run-STEM``, scored on the eval images.

    A finished run already there with the same config (``--keep``) is scored, not trained again.
    """
    run = tmp / f"run-{config.stem}"
    metrics = run / "metrics.json"
    kept = run / "config.yaml"
    if metrics.is_file() and kept.is_file() and _same_train(kept, config):
        train_s = float(json.loads(metrics.read_text())["seconds"])
    else:
        shutil.rmtree(run, ignore_errors=True)
        start = time.perf_counter()
        hpo("train", "--config", str(config), "--full", "--out", str(run), "--quiet", env=env)
        train_s = time.perf_counter() - start
    return {"train_s": round(train_s, 1), **score(run, data, tmp, env)}


def _same_train(a: Path, b: Path) -> bool:
    return yaml.safe_load(a.read_text()).get("train") == yaml.safe_load(b.read_text()).get("train")


def demo_data(root: Path, profiles: int, seed: int = 0, *, eval_images: int | None = None) -> Path:
    """Demo data in the competition layout at ``root`` (drawn once; reused when present)."""
    if not (root / "train" / "train.csv").is_file():
        start = time.perf_counter()
        extra = [] if eval_images is None else ["--eval-images", str(eval_images)]
        hpo("data", "synth", "--out", str(root), "--profiles", str(profiles), "--seed", str(seed),
            *extra)  # fmt: skip
        log(f"demo data: {profiles} people in {time.perf_counter() - start:.1f} s -> {root}")
    return root


@contextlib.contextmanager
def postgres_url(url: str | None = None, *, max_connections: int | None = None) -> Iterator[str]:
    """``url`` if given, else a throwaway PostgreSQL server's URL for the duration.

    ``max_connections`` sets the throwaway server's limit (None: its default of 200).
    """
    if url:
        yield url
        return
    from hpo.testing.postgres import postgres_server

    limits = {} if max_connections is None else {"max_connections": max_connections}
    with postgres_server(**limits) as server:
        yield server.url


@contextlib.contextmanager
def workdir(keep: Path | None = None) -> Iterator[Path]:
    """``keep`` (created) if given, else a temporary folder removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="hpo-bench-") as tmp:
        yield Path(tmp)


def window_ms(ends: Sequence[float], lo: int, hi: int) -> float | None:
    """Milliseconds per trial between the ``lo``-th and ``hi``-th trial ends (sorted seconds).

    ``ends[k]`` is when the k-th trial finished; the window's cost is the time from the end of
    trial ``lo - 1`` (or ``ends[0]`` minus one mean step when ``lo`` is 0) to the end of
    ``hi - 1``, divided by the trials in between.
    """
    hi = min(hi, len(ends))
    if hi - lo < 2:
        return None
    if lo == 0:
        return 1000 * (ends[hi - 1] - ends[0]) / (hi - 1)
    return 1000 * (ends[hi - 1] - ends[lo - 1]) / (hi - lo)


def step_setup(config: Any, num_classes: int, device: Any) -> dict[str, Any]:
    """What one training step needs, with the loop's precision and memory format.

    The model (in ``memory_format``), loss, optimizer, the autocast ``dtype`` (None: full
    precision) and a ``GradScaler`` (enabled only for float16), chosen the way
    ``hpo.train.fit`` chooses them for ``config`` on ``device``, so every path a benchmark
    compares trains alike and a ratio measures the data path, not AMP or channels_last.
    """
    import torch

    from hpo.components import MODELS
    from hpo.train.device import use_channels_last
    from hpo.train.loop import amp_dtype
    from hpo.train.losses import LOSSES
    from hpo.train.models import build_model
    from hpo.train.optim import build_optimizer

    cfg = config.train
    dtype = amp_dtype(device, cfg.amp)
    channels_last = use_channels_last(
        device, MODELS.info(cfg.model.name).cpu_channels_last, cfg.channels_last
    )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build_model(cfg.model, num_classes).to(device).train()
    model = model.to(memory_format=memory_format)
    criterion = LOSSES.create(cfg.loss.name, num_classes=num_classes, **cfg.loss.params).to(device)
    return {
        "model": model,
        "criterion": criterion,
        "optimizer": build_optimizer(cfg.optimizer, model.parameters()),
        "dtype": dtype,
        "scaler": torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
        "memory_format": memory_format,
    }


def train_step(setup: dict[str, Any], x: Any, y: Any, device: Any) -> None:
    """One forward, backward and optimizer step of ``step_setup``'s model on a batch."""
    import torch

    dtype = setup["dtype"]
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        loss = setup["criterion"](setup["model"](x), y)
    setup["scaler"].scale(loss).backward()
    setup["scaler"].step(setup["optimizer"])
    setup["scaler"].update()
    setup["optimizer"].zero_grad(set_to_none=True)


def floor_epoch(
    config: Any,
    n: int,
    num_classes: int,
    device: Any,
    rounds: int,
    *,
    channels_last: bool | None = None,
) -> float:
    """Seconds of one epoch of bare forward + backward + optimizer steps (best of ``rounds``).

    The same model, loss and optimizer as ``config``, stepping over ready, normalized batches
    already on the device: no slicing, augmentation or bookkeeping. ``channels_last`` None
    uses the loop's own choice of memory format.
    """
    import torch

    setup = step_setup(config, num_classes, device)
    if channels_last is not None:
        setup["memory_format"] = torch.channels_last if channels_last else torch.contiguous_format
        setup["model"] = setup["model"].to(memory_format=setup["memory_format"])
    height, width = config.data.image_size
    batch_size = config.train.batch_size
    sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
    batches = {
        size: (
            torch.randn(size, 3, height, width, device=device).contiguous(
                memory_format=setup["memory_format"]
            ),
            torch.randint(0, num_classes, (size,), device=device),
        )
        for size in set(sizes)
    }
    times = []
    for _ in range(rounds + 1):  # the first round warms up (allocator, cuDNN autotuning)
        sync(device)
        start = time.perf_counter()
        for size in sizes:
            train_step(setup, *batches[size], device)
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_processes(
    target: Callable[..., None],
    arg_lists: Sequence[tuple[Any, ...]],
    on_go: Callable[[], None] | None = None,
) -> float:
    """Run ``target(*args, ready, go)`` in one spawned process per ``args``, started together.

    Each process does its imports and setup, releases ``ready`` and waits for ``go``, so
    interpreter start-up is not timed. Returns seconds from ``go`` to the last exit.
    ``on_go`` is called once every process is ready, just before ``go``.

    Raises:
        SystemExit: a process failed.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    ready, go = ctx.Semaphore(0), ctx.Event()
    procs = [ctx.Process(target=target, args=(*args, ready, go)) for args in arg_lists]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    if on_go is not None:
        on_go()
    start = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    failed = [proc.exitcode for proc in procs if proc.exitcode]
    if failed:
        raise SystemExit(f"{len(failed)} worker process(es) failed: exit codes {failed}")
    return elapsed
