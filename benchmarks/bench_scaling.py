"""Trials per minute of N hpo workers on one study against the linear ideal, and what they cost.

Each worker is a process running ``hpo.study.run_worker`` on a shared study (study-wide
``n_trials``, heartbeats every 60 s) whose objective sleeps ``--sleep`` seconds, so the cores of
a small machine are not the limit: what is left is storage contention and the worker loop. The
workers import ``hpo.study`` only (no torch). Each figure is the median of ``--repeat`` fresh
studies, with ``_min`` and ``_max``. One JSON line per storage and worker count:

- ``trials_per_min``, ``efficiency``: finished trials over the time from the first trial's start
  to the last trial's end (read from the storage), and that over ``ideal_per_min`` (``workers x
  60 / sleep``); ``efficiency_steady``: the same between the 10th and the 90th percentile of
  the trial ends, without the start-up and the tail.
- ``own_ms_per_trial`` (mean) and ``own_ms_p90``: hpo's own cost per trial, measured inside
  each worker as the time between two consecutive trial ends of that worker minus the sleep
  (the slot check, creating and sampling the trial, starting its heartbeat, telling it; on an
  overloaded machine also the wait for a core); ``worker_cpu_ms_per_trial``: the workers' CPU
  time from the start to their exit over the trials they ran, and ``server_cpu_ms_per_trial``
  the PostgreSQL server's (its postmaster and every backend, read from ``/proc``; absent for a
  server on another machine). Their sum over the machine's cores bounds the trials per second.
- ``finished``, ``running``, ``waiting``, ``failed``, ``discarded``, ``duplicates``, ``exact``:
  the study's totals read back; ``exact`` is finished == trials with nothing RUNNING or
  WAITING and no duplicate (two trials with one trial number or one creating call's token).
- PostgreSQL only, sampled from ``pg_stat_activity`` every 0.25 s while the workers run (each
  worker names its connections ``hpo-bench-wK`` through ``PGAPPNAME``): ``conn_per_worker_max``
  (most connections one worker held at once), ``conn_per_worker_mean`` (mean over samples of
  the workers' connections per worker), ``conn_workers_max`` (most held by all workers at
  once), ``conn_server_max`` (every client connection on the server: workers, this script,
  the sampler), ``connects_per_worker`` (sessions opened on the database, from
  ``pg_stat_database``, per worker) and the server's ``max_connections``.
- ``rss_mb_max`` and ``rss_mb_median``: peak resident memory of the worker processes
  (``ru_maxrss``; shared pages count in each); ``load_1m_max``: the highest 1-minute load
  average seen during the run.

    python benchmarks/bench_scaling.py --quick
    python benchmarks/bench_scaling.py --workers 1 2 4 8 --trials-per-worker 12 --sleep 1
    python benchmarks/bench_scaling.py --many --out benchmarks/results/bench_scaling_many.jsonl

``--many`` is the many-workers measurement: 8, 32 and 64 workers on a throwaway PostgreSQL
(``max_connections`` 300), 20 trials of 2 s per worker, one run each (about 5 minutes on 2
cores); any flag given with it overrides its value.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import resource
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy
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

from hpo.study import (
    is_discarded,
    load_study,
    load_study_spec,
    open_storage,
    open_study,
    run_worker,
)
from hpo.study._outage import CREATE_TOKEN_KEY

STUDY_FILE = ROOT / "studies" / "mask-clf.yaml"
APP_PREFIX = "hpo-bench-w"
SAMPLE_EVERY = 0.25
MANY = {
    "storages": ["postgresql"],
    "workers": [8, 32, 64],
    "trials_per_worker": 20,
    "sleep": 2.0,
    "repeat": 1,
    "max_connections": 300,
}


def _open(url: str, name: str, seed: int) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    storage = open_storage(url, heartbeat_interval=60)
    spec = load_study_spec(STUDY_FILE, name=name)
    sampler = optuna.samplers.RandomSampler(seed=seed)
    return open_study(spec, storage, data_fingerprint="bench", sampler=sampler)


def _work(
    url: str, name: str, seed: int, n: int, sleep: float, out: str, ready: Any, go: Any
) -> None:
    os.environ["PGAPPNAME"] = f"{APP_PREFIX}{seed}"  # libpq names this worker's connections
    study = _open(url, name, seed)
    ends: list[float] = []

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -10.0, 10.0)
        time.sleep(sleep)
        return x

    ready.release()
    go.wait()
    start, cpu = time.perf_counter(), time.process_time()
    run_worker(
        study,
        objective,
        n_trials=n,
        poll_seconds=0.2,
        on_trial_end=lambda _trial: ends.append(time.perf_counter() - start),
    )
    cpu_s = time.process_time() - cpu  # every thread of this process
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    record = {"ends": ends, "cpu_s": cpu_s, "rss_mb": rss_mb}
    Path(out, f"w{seed}.json").write_text(json.dumps(record))


def _cpu_of_tree(pid: int) -> float | None:
    """CPU seconds of process ``pid``, its living children and the children it has reaped.

    For the PostgreSQL postmaster: every backend is its child, and a backend that has exited is
    counted in its ``cutime``. None when ``/proc`` cannot tell (a server on another machine).
    """
    ticks = os.sysconf("SC_CLK_TCK")

    def fields(stat: Path) -> list[str]:
        text = stat.read_text()
        return text[text.rindex(")") + 2 :].split()  # fields 3.. of proc(5)

    try:
        own = fields(Path(f"/proc/{pid}/stat"))
    except (OSError, ValueError):
        return None
    total = sum(int(v) for v in own[11:15])  # utime, stime, cutime, cstime
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError):
            child = fields(stat)
            if int(child[1]) == pid:
                total += int(child[11]) + int(child[12])
    return total / ticks


class _Sampler:
    """Samples the load average and, on PostgreSQL, ``pg_stat_activity``, in a thread."""

    def __init__(self, url: str) -> None:
        parsed = sqlalchemy.make_url(url)
        self.postgres = parsed.get_backend_name() == "postgresql"
        self.dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self.database = parsed.database
        self.loads: list[float] = []
        self.per_worker: list[dict[str, int]] = []  # application_name -> connections, per sample
        self.server: list[int] = []
        self.max_connections: int | None = None
        self.sessions = 0  # sessions opened on the database while sampling
        self.postmaster: int | None = None
        self.server_cpu_s: float | None = None  # the server's CPU seconds from go to the end
        self._stop = threading.Event()
        self._error: BaseException | None = None

    @contextlib.contextmanager
    def running(self) -> Iterator[_Sampler]:
        conn = None
        if self.postgres:
            import psycopg

            conn = psycopg.connect(self.dsn, autocommit=True, application_name="hpo-bench-sampler")
            self.max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
            self.sessions = self._sessions(conn)
            backend = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
            with contextlib.suppress(OSError, ValueError):
                stat = Path(f"/proc/{backend}/stat").read_text()
                self.postmaster = int(stat[stat.rindex(")") + 2 :].split()[1])
        thread = threading.Thread(target=self._loop, args=(conn,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()
            if conn is not None:
                time.sleep(0.5)  # the workers' backends count their sessions as they exit
                self.sessions = self._sessions(conn) - self.sessions
                if self.postmaster is not None and self.server_cpu_s is not None:
                    after = _cpu_of_tree(self.postmaster)
                    self.server_cpu_s = None if after is None else after - self.server_cpu_s
                conn.close()
        if self._error is not None:
            raise SystemExit(f"sampling pg_stat_activity failed: {self._error}")

    def go(self) -> None:
        """The workers start their trials now: the server's CPU is counted from here."""
        if self.postmaster is not None:
            self.server_cpu_s = _cpu_of_tree(self.postmaster)

    @staticmethod
    def _sessions(conn: Any) -> int:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        return int(row[0])

    def _loop(self, conn: Any) -> None:
        try:
            while True:
                self.loads.append(os.getloadavg()[0])
                if conn is not None:
                    self._sample(conn)
                if self._stop.wait(SAMPLE_EVERY):
                    return
        except BaseException as exc:  # reported by running() in the main thread
            self._error = exc

    def _sample(self, conn: Any) -> None:
        rows = conn.execute(
            "SELECT datname, application_name, count(*) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
            "GROUP BY 1, 2"
        ).fetchall()
        self.server.append(sum(count for _, _, count in rows) + 1)  # + the sampler's own
        self.per_worker.append(
            {
                app: count
                for db, app, count in rows
                if db == self.database and app.startswith(APP_PREFIX)
            }
        )

    def figures(self, workers: int, trials: int) -> dict[str, Any]:
        out: dict[str, Any] = {"load_1m_max": round(max(self.loads), 2)}
        if self.server_cpu_s is not None:
            out["server_cpu_ms_per_trial"] = round(1000 * self.server_cpu_s / trials, 1)
        if not self.postgres:
            return out
        held = [sample for sample in self.per_worker if sample]
        totals = [sum(sample.values()) for sample in held]
        return {
            **out,
            "conn_per_worker_max": max((max(s.values()) for s in held), default=0),
            "conn_per_worker_mean": round(statistics.fmean(totals) / workers, 2) if held else 0,
            "conn_workers_max": max(totals, default=0),
            "conn_server_max": max(self.server, default=0),
            "connects_per_worker": round(self.sessions / workers, 2),
            "max_connections": self.max_connections,
        }


def _totals(name: str, url: str, n: int) -> tuple[dict[str, Any], list[optuna.trial.FrozenTrial]]:
    trials = load_study(name, url).get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    discarded = [t for t in trials if is_discarded(t)]
    finished = [
        t for t in trials if t.state.name in ("COMPLETE", "PRUNED") and not is_discarded(t)
    ]
    tokens = [
        t.system_attrs[CREATE_TOKEN_KEY] for t in trials if CREATE_TOKEN_KEY in t.system_attrs
    ]
    numbers = [t.number for t in trials]
    duplicates = (len(numbers) - len(set(numbers))) + (len(tokens) - len(set(tokens)))
    figures = {
        "finished": len(finished),
        "running": states["RUNNING"],
        "waiting": states["WAITING"],
        "failed": states["FAIL"],
        "discarded": len(discarded),
        "duplicates": duplicates,
        "exact": len(finished) == n
        and not states["RUNNING"]
        and not states["WAITING"]
        and not duplicates,
    }
    return figures, finished


def _own_cost(outs: Path, sleep: float) -> dict[str, Any]:
    records = [json.loads(p.read_text()) for p in sorted(outs.glob("w*.json"))]
    cycles = [b - a for r in records for a, b in zip(r["ends"], r["ends"][1:], strict=False)]
    rss = [r["rss_mb"] for r in records]
    trials = sum(len(r["ends"]) for r in records)
    own = sorted(1000 * (c - sleep) for c in cycles)
    return {
        "own_ms_per_trial": round(statistics.fmean(own), 1) if own else None,
        "own_ms_p90": round(own[int(0.9 * (len(own) - 1))], 1) if own else None,
        "worker_cpu_ms_per_trial": round(1000 * sum(r["cpu_s"] for r in records) / trials, 1),
        "rss_mb_max": round(max(rss), 1),
        "rss_mb_median": round(statistics.median(rss), 1),
    }


def measure(url: str, workers: int, n: int, sleep: float, _run: int = 0) -> dict[str, Any]:
    name = f"scale-{uuid.uuid4().hex[:8]}"
    _open(url, name, 0)  # created once, before the workers race to join it
    with tempfile.TemporaryDirectory(prefix="hpo-bench-scale-") as tmp:
        with _Sampler(url).running() as sampler:
            args = [(url, name, k, n, sleep, tmp) for k in range(workers)]
            wall = run_processes(_work, args, on_go=sampler.go)
        own = _own_cost(Path(tmp), sleep)
    totals, trials = _totals(name, url, n)
    starts = sorted(t.datetime_start.timestamp() for t in trials if t.datetime_start)
    ends = sorted(t.datetime_complete.timestamp() for t in trials if t.datetime_complete)
    per_min = 60 * len(trials) / (ends[-1] - starts[0])
    lo, hi = int(0.1 * (len(ends) - 1)), int(0.9 * (len(ends) - 1))
    steady = 60 * (hi - lo) / (ends[hi] - ends[lo]) if ends[hi] > ends[lo] else None
    ideal = workers * 60 / sleep
    return {
        **totals,
        "seconds": round(ends[-1] - starts[0], 2),
        "wall_s": round(wall, 2),
        "trials_per_min": round(per_min, 1),
        "ideal_per_min": round(ideal, 1),
        "efficiency": round(per_min / ideal, 3),
        "efficiency_steady": round(steady / ideal, 3) if steady else None,
        **own,
        **sampler.figures(workers, len(trials)),
    }


def main() -> None:
    p = parser(__doc__, full_repeat=1)
    p.add_argument("--many", action="store_true", help="8, 32 and 64 workers on PostgreSQL")
    p.add_argument("--workers", type=int, nargs="+", default=None)
    p.add_argument("--trials-per-worker", type=int, default=None)
    p.add_argument("--sleep", type=float, default=None, help="seconds per trial")
    p.add_argument("--storages", nargs="+", default=None, help="sqlite, postgresql (both)")
    p.add_argument("--postgres-url", default=None, help="use this server instead of a fresh one")
    p.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="max_connections of the throwaway server (default 200; 300 with --many)",
    )
    args = p.parse_args()
    if args.many:
        for key, value in MANY.items():
            if getattr(args, key) is None:
                setattr(args, key, value)
    workers_list = args.workers or ([1, 2, 4] if args.quick else [1, 2, 4, 8])
    per_worker = args.trials_per_worker or (6 if args.quick else 12)
    sleep = args.sleep or (0.5 if args.quick else 1.0)
    storages = args.storages or ["sqlite", "postgresql"]
    emit = Emitter("scaling", args.out, quick=args.quick, sleep_s=sleep)

    with workdir(None) as tmp:
        for storage in storages:
            if storage == "postgresql":
                context = postgres_url(args.postgres_url, max_connections=args.max_connections)
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
