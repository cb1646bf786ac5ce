"""Milliseconds per trial of hpo's worker loop against plain ``study.optimize``, as a study grows.

A trivial objective (three suggestions, no training) runs ``--trials`` trials through
``hpo.study.run_worker`` (study-wide slot claims, heartbeats, the stored study-file
fingerprint checked on join) and through plain ``study.optimize`` on the same kind of
storage (a fresh study of each). Per-trial cost comes from the trials' completion times in
the storage, in windows at the start and the end of the study (one JSON line per window), so
growth is visible; ``overhead_ms`` is hpo's cost above Optuna's. With ``--workers N`` (N > 1)
that many processes write at once and the figure is wall time per finished trial. Each
window's figures are the median of ``--repeat`` runs, with ``_min`` and ``_max``.

    python benchmarks/bench_storage.py --quick
    python benchmarks/bench_storage.py --trials 1000 --samplers random tpe
    python benchmarks/bench_storage.py --trials 1000 --storages postgresql --workers 8
"""

from __future__ import annotations

import contextlib
import time
import uuid
import warnings
from typing import Any

import optuna
import sqlalchemy
from _common import (
    ROOT,
    Emitter,
    log,
    parser,
    postgres_url,
    repeats,
    run_processes,
    summarize,
    window_ms,
    workdir,
)

from hpo.study import load_study_spec, open_storage, open_study, run_worker

STUDY_FILE = ROOT / "studies" / "mask-clf.yaml"


def objective(trial: optuna.Trial) -> float:
    x = trial.suggest_float("x", -10.0, 10.0)
    y = trial.suggest_float("y", 1e-5, 1e-1, log=True)
    kind = trial.suggest_categorical("kind", ["a", "b", "c"])
    return (x - 2.0) ** 2 + y + (0.5 if kind == "a" else 0.0)


def _sampler(name: str, seed: int) -> optuna.samplers.BaseSampler:
    if name == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)
    return optuna.samplers.RandomSampler(seed=seed)


def _plain_url(url: str) -> str:
    # Plain postgresql:// means psycopg2 to SQLAlchemy; we ship psycopg 3.
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _open(mode: str, url: str, name: str, sampler: str, seed: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage: optuna.storages.RDBStorage
    if mode == "hpo":
        storage = open_storage(url, heartbeat_interval=60)
        spec = load_study_spec(STUDY_FILE, name=name)
        study = open_study(
            spec, storage, data_fingerprint="bench", sampler=_sampler(sampler, seed)
        )
    else:
        storage = optuna.storages.RDBStorage(_plain_url(url))
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            sampler=_sampler(sampler, seed),
            direction="maximize",
            load_if_exists=True,
        )
    _ENGINES[id(study)] = storage.engine
    return study


_ENGINES: dict[int, sqlalchemy.engine.Engine] = {}


def _work(mode: str, url: str, name: str, sampler: str, seed: int, n: int, share: int,
          ready: Any, go: Any) -> None:  # fmt: skip
    """One worker process: open the study, wait for the start signal, run its trials."""
    study = _open(mode, url, name, sampler, seed)
    ready.release()
    go.wait()
    if mode == "hpo":
        run_worker(study, objective, n_trials=n, poll_seconds=0.2)
    else:
        study.optimize(objective, n_trials=share)


def run(mode: str, url: str, sampler: str, n: int, workers: int) -> tuple[list[float], list[int]]:
    """Run ``n`` trials with ``mode`` ('hpo' or 'optuna').

    Returns the sorted completion times (s) and, with one worker, the number of SQL statements
    sent by the time each trial ended (the heartbeat thread's included).
    """
    name = f"bench-{mode}-{uuid.uuid4().hex[:8]}"
    queries: list[int] = []
    if workers == 1:
        study = _open(mode, url, name, sampler, 0)
        sent = [0]

        def count(*_: object) -> None:
            sent[0] += 1

        def mark() -> None:
            queries.append(sent[0])

        sqlalchemy.event.listen(_ENGINES[id(study)], "before_cursor_execute", count)
        if mode == "hpo":
            run_worker(study, objective, n_trials=n, on_trial_end=lambda t: mark())
        else:
            study.optimize(objective, n_trials=n, callbacks=[lambda s, t: mark()])
    else:
        # The first open creates the study (and, for hpo, stores its fingerprint).
        _open(mode, url, name, sampler, 0)
        shares = [n // workers + (k < n % workers) for k in range(workers)]
        run_processes(_work, [(mode, url, name, sampler, k, n, shares[k]) for k in range(workers)])
        study = optuna.load_study(study_name=name, storage=_plain_url(url))
    finished = [
        t.datetime_complete.timestamp()
        for t in study.get_trials(deepcopy=False)
        if t.state.is_finished() and t.datetime_complete and t.state.name != "FAIL"
        and "hpo:discarded" not in t.user_attrs
    ]  # fmt: skip
    return sorted(finished), queries


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--trials", type=int, default=None)
    p.add_argument("--window", type=int, default=100, help="trials per window")
    p.add_argument("--storages", nargs="+", default=["sqlite", "postgresql"])
    p.add_argument("--samplers", nargs="+", default=None, help="random, tpe")
    p.add_argument("--workers", type=int, nargs="+", default=[1])
    p.add_argument("--postgres-url", default=None, help="use this server instead of a fresh one")
    args = p.parse_args()
    n = args.trials or (200 if args.quick else 1000)
    samplers = args.samplers or (["random"] if args.quick else ["random", "tpe"])
    windows = [(0, args.window), (n - args.window, n)]
    emit = Emitter("storage", args.out, quick=args.quick)

    with workdir(None) as tmp:
        for storage in args.storages:
            if storage == "postgresql":
                context = postgres_url(args.postgres_url)
            else:
                context = contextlib.nullcontext(f"sqlite:///{tmp / 'storage.db'}")
            with context as url:
                for sampler in samplers:
                    for workers in args.workers:
                        if storage == "sqlite" and workers > 1:
                            log("sqlite with several writers: measured by bench_scaling.py")
                        runs = [
                            measure(url, storage, sampler, n, workers, windows)
                            for _ in range(repeats(args))
                        ]
                        for k in range(len(windows)):
                            emit(
                                storage=storage,
                                sampler=sampler,
                                workers=workers,
                                **summarize([run[k] for run in runs]),
                            )


def measure(
    url: str, storage: str, sampler: str, n: int, workers: int, windows: list[tuple[int, int]]
) -> list[dict[str, Any]]:
    """One run of Optuna alone and of hpo's loop: the figures of each window."""
    ends, queries = {}, {}
    for mode in ("optuna", "hpo"):
        log(f"{storage} {sampler} x{workers}: {mode}, {n} trials ...")
        started = time.perf_counter()
        ends[mode], queries[mode] = run(mode, url, sampler, n, workers)
        log(f"  {time.perf_counter() - started:.1f} s")
    records = []
    for lo, hi in windows:
        hpo_ms = window_ms(ends["hpo"], lo, hi)
        optuna_ms = window_ms(ends["optuna"], lo, hi)
        records.append(
            {
                "trials": [lo, hi],
                "hpo_ms_per_trial": _round(hpo_ms),
                "optuna_ms_per_trial": _round(optuna_ms),
                "overhead_ms": _round(
                    None if hpo_ms is None or optuna_ms is None else hpo_ms - optuna_ms
                ),
                "hpo_queries_per_trial": _per_trial(queries["hpo"], lo, hi),
                "optuna_queries_per_trial": _per_trial(queries["optuna"], lo, hi),
                "finished": {k: len(v) for k, v in ends.items()},
            }
        )
    return records


def _per_trial(counts: list[int], lo: int, hi: int) -> float | None:
    """SQL statements per trial over trials ``lo..hi`` (None when not counted)."""
    hi = min(hi, len(counts))
    if hi - lo < 2:
        return None
    first = counts[lo - 1] if lo > 0 else counts[0]
    return round((counts[hi - 1] - first) / (hi - lo if lo > 0 else hi - 1), 1)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


if __name__ == "__main__":
    main()
