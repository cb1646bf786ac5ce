"""Trials per minute with 1, 2, ... workers of one study on one machine.

Two objectives, one JSON line per measurement (``workers``, ``objective``, ``trials``,
``seconds``, ``trials_per_min``, ``efficiency`` = per-worker rate relative to 1 worker), each
the median of ``--repeat`` fresh studies with ``_min`` and ``_max``:

- ``demo``: ``hpo run --study mask-clf --workers N`` (the real supervisor, its own cores
  divided among the workers) on fresh demo data, timed from start to exit, so the start of the
  worker processes (importing torch) is included, as a user sees it. With ``--devices`` the
  workers are GPU workers instead, ``--devices D --workers-per-device M`` for each M given
  (rows also carry ``devices`` and ``workers_per_device``); ``--image-size H W`` sets
  ``data.image_size`` (the study's own is 64x48).
- ``sleep``: N processes (spawn) each running ``hpo.study.run_worker`` with an objective that
  sleeps ``--sleep`` seconds, on one SQLite study: what claiming slots, heartbeats and the
  study-wide total cost, without training. ``hpo run`` cannot take a custom objective, so this
  drives the worker loop directly (what each supervised child runs around its objective).

    python benchmarks/bench_workers.py [--quick] [--workers 1 2] [--sleep-workers 1 2 4 8]
    # 1 vs 2 workers per GPU on the demo study at 128x96 (issue 10):
    python benchmarks/bench_workers.py --skip-sleep --devices cuda:0 --workers-per-device 1 2 \
        --image-size 128 96
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, Emitter, demo_data, hpo_command, log, parser, repeated, repeats, workdir


def _sleep_worker(url: str, n_trials: int, seconds: float) -> None:
    import optuna

    from hpo.study import open_storage, run_worker

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url, heartbeat_interval=60, grace_period=120, max_retry=2)
    study = optuna.load_study(study_name="sleep", storage=storage)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        time.sleep(seconds)
        return x

    run_worker(study, objective, n_trials=n_trials, poll_seconds=0.2)


def bench_sleep(
    workers: int, trials: int, seconds: float, tmp: Path, run: int = 0
) -> dict[str, object]:
    import optuna

    url = f"sqlite:///{tmp / f'sleep-{workers}-{run}.db'}"
    optuna.create_study(study_name="sleep", storage=url, direction="maximize")
    ctx = multiprocessing.get_context("spawn")
    processes = [
        ctx.Process(target=_sleep_worker, args=(url, trials, seconds)) for _ in range(workers)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    study = optuna.load_study(study_name="sleep", storage=url)
    return _rate(
        {"objective": "sleep", "sleep_s": seconds, **_span(study), "wall_s": round(wall, 1)}
    )


def _span(study: object) -> dict[str, object]:
    """Finished trials and seconds from the first trial's start to the last one's end.

    Process start-up (importing torch and optuna) is left out: it is paid once per worker,
    not per trial.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))  # type: ignore[attr-defined]
    start = min(t.datetime_start for t in trials)
    end = max(t.datetime_complete for t in trials)
    return {"trials": len(trials), "seconds": (end - start).total_seconds()}


def bench_demo(
    slots: list[str],
    trials: int,
    data: Path,
    tmp: Path,
    *,
    quick: bool,
    image_size: tuple[int, int] | None,
    run: int = 0,
) -> dict[str, object]:
    """One ``hpo run`` of the demo study with the worker flags ``slots`` (``--workers 2``)."""
    tag = "-".join(s.strip("-").replace(":", "").replace(",", "_") for s in slots) + f"-{run}"
    db = tmp / f"demo-{tag}.db"
    args = ["run", "--study", "mask-clf", "--n-trials", str(trials)]
    args += ["--storage", f"sqlite:///{db}", "--set", f"data.root={data}", "--quiet"]
    args += ["--set", f"study.artifacts={tmp / f'demo-{tag}.artifacts'}", *slots]
    if quick:
        args += ["--set", "train.epochs=3"]
    if image_size is not None or quick:
        height, width = image_size or (32, 24)
        args += ["--set", f"data.image_size=[{height},{width}]"]
    cmd, env = hpo_command(*args, env={"HPO_CACHE_DIR": str(tmp / "cache")})
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    import optuna

    study = optuna.load_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    size = image_size or ((32, 24) if quick else None)
    return _rate(
        {
            "objective": "demo",
            **({"image_size": list(size)} if size else {}),
            **_span(study),
            "wall_s": round(wall, 1),
        }
    )


def _rate(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with its trials per minute (from first trial start to last trial end)."""
    row["trials_per_min"] = round(60.0 * row["trials"] / row["seconds"], 2)
    row["seconds"] = round(row["seconds"], 1)
    return row


def _demo_runs(args: argparse.Namespace) -> list[tuple[dict[str, object], list[str]]]:
    """(row fields, worker flags of ``hpo run``) of every demo measurement asked for."""
    if args.devices is None:
        return [({"workers": n}, ["--workers", str(n)]) for n in args.workers]
    from hpo.workers import plan_workers

    runs: list[tuple[dict[str, object], list[str]]] = []
    for per_device in args.workers_per_device:
        # The check hpo run makes: a device this machine lacks is one line, before any timing.
        plans = plan_workers(devices=args.devices, workers_per_device=per_device, workers=None)
        assert plans is not None
        fields: dict[str, object] = {
            "workers": len(plans),
            "devices": args.devices,
            "workers_per_device": per_device,
        }
        flags = ["--devices", args.devices, "--workers-per-device", str(per_device)]
        runs.append((fields, flags))
    return runs


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--sleep-workers", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--trials", type=int, default=None, help="Demo trials (default 16).")
    p.add_argument("--sleep", type=float, default=2.0, help="Seconds per sleep trial.")
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--skip-sleep", action="store_true")
    p.add_argument(
        "--devices",
        default=None,
        metavar="all|cuda:K,...",
        help="Demo runs on these GPUs (hpo run --devices) instead of --workers CPU workers.",
    )
    p.add_argument(
        "--workers-per-device",
        type=int,
        nargs="+",
        default=[1, 2],
        metavar="M",
        help="With --devices: one demo run per M (hpo run --workers-per-device M).",
    )
    p.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="Demo images' height and width (data.image_size; default: the study's, 32x24 "
        "with --quick).",
    )
    args = p.parse_args()
    demo_trials = args.trials or (6 if args.quick else 16)
    repeat = repeats(args)
    from hpo.exceptions import ConfigError

    try:
        demo_runs = _demo_runs(args)
    except ConfigError as exc:
        sys.exit(f"error: {exc}")

    emit = Emitter("workers", args.out, quick=args.quick)
    with workdir(None) as tmp:
        rows: list[dict[str, Any]] = []
        for workers in [] if args.skip_sleep else args.sleep_workers:
            trials = (2 if args.quick else 4) * max(args.sleep_workers)
            log(f"sleep: {workers} worker(s), {trials} trials of {args.sleep} s ...")
            measure = functools.partial(bench_sleep, workers, trials, args.sleep, tmp)
            rows.append({"workers": workers, **repeated(repeat, measure)})
            emit(**_efficiency(rows, "sleep"))
        if not args.skip_demo:
            data = demo_data(tmp / "mask", 40 if args.quick else 150)
            size = tuple(args.image_size) if args.image_size else None
            for fields, flags in demo_runs:
                log(f"demo: {' '.join(flags)}, {demo_trials} trials ...")
                measure = functools.partial(
                    bench_demo, flags, demo_trials, data, tmp, quick=args.quick, image_size=size
                )
                rows.append({**fields, **repeated(repeat, lambda k, m=measure: m(run=k))})
                emit(**_efficiency(rows, "demo"))


def _efficiency(rows: list[dict[str, Any]], objective: str) -> dict[str, Any]:
    """The last row with its per-worker rate relative to the first row of ``objective``."""
    row = rows[-1]
    base = next(r for r in rows if r["objective"] == objective)
    # Per-worker throughput relative to one worker (1.0 = perfect scaling), on the medians.
    row["efficiency"] = round(
        row["trials_per_min"] / (base["trials_per_min"] * int(row["workers"])), 3
    )
    return row


if __name__ == "__main__":
    main()
