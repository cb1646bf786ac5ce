"""Trials per minute of 1, 2, 4 and 8 hpo workers on one study, against the linear ideal.

Each worker is a process running ``hpo.study.run_worker`` on a shared study (study-wide
``n_trials``, heartbeats) whose objective sleeps ``--sleep`` seconds, so the 2 cores of a small
machine are not the limit: what is left is storage contention and the worker loop. Throughput
is finished trials over the time from the first trial's start to the last trial's end (read
from the storage); ``efficiency`` is that over ``workers x 60 / sleep``. Each figure is the
median of ``--repeat`` fresh studies, with ``_min`` and ``_max``.

    python benchmarks/bench_scaling.py --quick
    python benchmarks/bench_scaling.py --workers 1 2 4 8 --trials-per-worker 12 --sleep 1
"""

from __future__ import annotations

import contextlib
import functools
import time
import uuid
from typing import Any

import optuna
from _common import (
    ROOT,
    Emitter,
    log,
    parser,
    postgres_url,
    repeated,
    repeats,
    run_processes,
    workdir,
)

from hpo.study import load_study, load_study_spec, open_storage, open_study, run_worker

STUDY_FILE = ROOT / "studies" / "mask-clf.yaml"


def _open(url: str, name: str, seed: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url, heartbeat_interval=60)
    spec = load_study_spec(STUDY_FILE, name=name)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    return open_study(spec, storage, data_fingerprint="bench", sampler=sampler)


def _work(url: str, name: str, seed: int, n: int, sleep: float, ready: Any, go: Any) -> None:
    study = _open(url, name, seed)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        time.sleep(sleep)
        return x

    ready.release()
    go.wait()
    run_worker(study, objective, n_trials=n, poll_seconds=0.2)


def measure(url: str, workers: int, n: int, sleep: float, _run: int = 0) -> dict[str, Any]:
    name = f"scale-{uuid.uuid4().hex[:8]}"
    _open(url, name, 0)  # created once, before the workers race to join it
    wall = run_processes(_work, [(url, name, k, n, sleep) for k in range(workers)])
    study = load_study(name, url)
    trials = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.state.name in ("COMPLETE", "PRUNED") and "hpo:discarded" not in t.user_attrs
    ]
    first = min(t.datetime_start.timestamp() for t in trials if t.datetime_start)
    last = max(t.datetime_complete.timestamp() for t in trials if t.datetime_complete)
    per_min = 60 * len(trials) / (last - first)
    ideal = workers * 60 / sleep
    return {
        "finished": len(trials),
        "seconds": round(last - first, 2),
        "wall_s": round(wall, 2),
        "trials_per_min": round(per_min, 1),
        "ideal_per_min": round(ideal, 1),
        "efficiency": round(per_min / ideal, 3),
    }


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--workers", type=int, nargs="+", default=None)
    p.add_argument("--trials-per-worker", type=int, default=None)
    p.add_argument("--sleep", type=float, default=None, help="seconds per trial")
    p.add_argument("--storages", nargs="+", default=["sqlite", "postgresql"])
    p.add_argument("--postgres-url", default=None, help="use this server instead of a fresh one")
    args = p.parse_args()
    workers_list = args.workers or ([1, 2, 4] if args.quick else [1, 2, 4, 8])
    per_worker = args.trials_per_worker or (6 if args.quick else 12)
    sleep = args.sleep or (0.5 if args.quick else 1.0)
    emit = Emitter("scaling", args.out, quick=args.quick, sleep_s=sleep)

    with workdir(None) as tmp:
        for storage in args.storages:
            if storage == "postgresql":
                context = postgres_url(args.postgres_url)
            else:
                context = contextlib.nullcontext(f"sqlite:///{tmp / 'scaling.db'}")
            with context as url:
                for workers in workers_list:
                    n = workers * per_worker
                    log(f"{storage}: {workers} worker(s), {n} trials of {sleep} s ...")
                    figures = repeated(
                        repeats(args), functools.partial(measure, url, workers, n, sleep)
                    )
                    emit(storage=storage, workers=workers, trials=n, **figures)


if __name__ == "__main__":
    main()
