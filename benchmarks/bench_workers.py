"""Trials per minute with 1, 2, ... workers of one study on one machine.

Two objectives, one JSON line per measurement (``workers``, ``objective``, ``trials``,
``seconds``, ``trials_per_min``, ``efficiency`` = per-worker rate relative to 1 worker,
``load_avg`` of the machine when it ended):

- ``demo``: ``hpo run --study mask-clf --workers N`` (the real supervisor, its own cores
  divided among the workers) on fresh demo data, timed from start to exit, so the start of the
  worker processes (importing torch) is included, as a user sees it.
- ``sleep``: N processes (spawn) each running ``hpo.study.run_worker`` with an objective that
  sleeps ``--sleep`` seconds, on one SQLite study: what claiming slots, heartbeats and the
  study-wide total cost, without training. ``hpo run`` cannot take a custom objective, so this
  drives the worker loop directly (what each supervised child runs around its objective).

    python benchmarks/bench_workers.py [--quick] [--workers 1 2] [--sleep-workers 1 2 4 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def bench_sleep(workers: int, trials: int, seconds: float, tmp: Path) -> dict[str, object]:
    import optuna

    url = f"sqlite:///{tmp / f'sleep-{workers}.db'}"
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
    return {"objective": "sleep", "sleep_s": seconds, **_span(study), "wall_s": round(wall, 1)}


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


def bench_demo(workers: int, trials: int, data: Path, tmp: Path, quick: bool) -> dict[str, object]:
    db = tmp / f"demo-{workers}.db"
    cmd = [sys.executable, "-m", "hpo", "run", "--study", "mask-clf", "--n-trials", str(trials)]
    cmd += ["--storage", f"sqlite:///{db}", "--set", f"data.root={data}", "--quiet"]
    cmd += ["--set", f"study.artifacts={tmp / f'demo-{workers}.artifacts'}"]
    cmd += ["--workers", str(workers)]
    if quick:
        cmd += ["--set", "train.epochs=3", "--set", "data.image_size=[32,24]"]
    env = {**os.environ, "HPO_CACHE_DIR": str(tmp / "cache")}
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    import optuna

    study = optuna.load_study(study_name="mask-clf", storage=f"sqlite:///{db}")
    return {"objective": "demo", **_span(study), "wall_s": round(wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Few trials, small images.")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--sleep-workers", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--trials", type=int, default=None, help="Demo trials (default 16).")
    parser.add_argument("--sleep", type=float, default=2.0, help="Seconds per sleep trial.")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    demo_trials = args.trials or (6 if args.quick else 16)

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        rows: list[dict[str, object]] = []
        for workers in args.sleep_workers:
            trials = (2 if args.quick else 4) * max(args.sleep_workers)
            rows.append({"workers": workers, **bench_sleep(workers, trials, args.sleep, tmp)})
            _emit(rows, "sleep")
        if not args.skip_demo:
            data = tmp / "mask"
            profiles = "40" if args.quick else "150"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "hpo",
                    "data",
                    "synth",
                    "--out",
                    str(data),
                    "--profiles",
                    profiles,
                ],
                check=True,
                capture_output=True,
            )
            for workers in args.workers:
                rows.append(
                    {"workers": workers, **bench_demo(workers, demo_trials, data, tmp, args.quick)}
                )
                _emit(rows, "demo")


def _emit(rows: list[dict[str, object]], objective: str) -> None:
    row = rows[-1]
    rate = 60.0 * float(row["trials"]) / float(row["seconds"])  # type: ignore[arg-type]
    row["trials_per_min"] = round(rate, 2)
    base = next(r for r in rows if r["objective"] == objective)
    base_rate = 60.0 * float(base["trials"]) / float(base["seconds"])  # type: ignore[arg-type]
    # Per-worker throughput relative to one worker (1.0 = perfect scaling).
    row["efficiency"] = round(rate / (base_rate * int(row["workers"])), 3)  # type: ignore[call-overload]
    row["seconds"] = round(float(row["seconds"]), 1)  # type: ignore[arg-type]
    row["load_avg"] = [round(v, 2) for v in os.getloadavg()]
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
