"""How a supervised run ended, judged against the study's total: reached, stopped, failed, died."""

from __future__ import annotations

from dataclasses import dataclass

from hpo.workers._supervisor import SupervisorResult

__all__ = ["Died", "Outcome", "Reached", "Stopped", "WorkerFailed", "judge"]


@dataclass(frozen=True)
class Outcome:
    """How a supervised run ended.

    Attributes:
        finished: Finished (complete + pruned) trials the study holds now.
        n_trials: The study-wide total asked for (None with only a timeout).
    """

    finished: int
    n_trials: int | None


@dataclass(frozen=True)
class Reached(Outcome):
    """The study holds its total."""


@dataclass(frozen=True)
class Stopped(Outcome):
    """Every worker stopped normally short of the total, as one worker in the process would.

    Attributes:
        reasons: Why they stopped (``timeout``, ``exhausted``: the sampler has nothing left),
            each once, sorted.
    """

    reasons: tuple[str, ...]


@dataclass(frozen=True)
class WorkerFailed(Outcome):
    """A worker stopped on a user error (exit 2) short of the total.

    Attributes:
        worker: The first such worker in plan order.
        error: Its error line (without ``error: ``).
        others: The other workers that exited 2.
    """

    worker: str
    error: str
    others: tuple[str, ...]


@dataclass(frozen=True)
class Died(Outcome):
    """Workers were killed or crashed short of the total.

    Attributes:
        exits: ``(worker, exit code)`` of every worker that did not exit 0, in plan order.
    """

    exits: tuple[tuple[str, int], ...]


def judge(result: SupervisorResult, *, finished: int, n_trials: int | None) -> Outcome:
    """How the run that gave ``result`` ended, with ``finished`` trials in the study now.

    Args:
        result: What the supervisor saw.
        finished: The study's finished trials now (workers elsewhere count too).
        n_trials: The study-wide total (None with only a timeout).
    """
    if n_trials is not None and finished >= n_trials:
        return Reached(finished, n_trials)
    # w1, w2, ..., w10 in the order they were planned, not the order they exited.
    in_order = sorted(result.exit_codes.items(), key=lambda wc: (len(wc[0]), wc[0]))
    dead = [(worker, code) for worker, code in in_order if code != 0]
    if not dead:
        return Stopped(finished, n_trials, tuple(sorted(set(result.stopped_by.values()))))
    user_errors = [worker for worker, code in dead if code == 2]
    if user_errors:
        first, *others = user_errors
        error = result.errors.get(first, "exit 2 with no error line")
        return WorkerFailed(finished, n_trials, first, error, tuple(others))
    return Died(finished, n_trials, tuple(dead))
