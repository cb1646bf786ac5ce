"""How a supervised run ended, judged against the study's total."""

from __future__ import annotations

from hpo.workers import Died, Reached, Stopped, SupervisorResult, WorkerFailed, judge


def result(codes: dict[str, int], **fields: dict[str, str]) -> SupervisorResult:
    return SupervisorResult(exit_codes=codes, **fields)


def test_a_study_that_holds_its_total_is_reached_whatever_the_workers_did() -> None:
    # Another machine's workers may have finished the total while these died.
    outcome = judge(result({"w1": -9, "w2": 2}), finished=5, n_trials=5)
    assert outcome == Reached(finished=5, n_trials=5)


def test_workers_that_stopped_normally_name_their_reasons_once() -> None:
    stopped_by = {"w1": "timeout", "w2": "timeout", "w3": "exhausted"}
    outcome = judge(
        result({"w1": 0, "w2": 0, "w3": 0}, stopped_by=stopped_by), finished=3, n_trials=9
    )
    assert outcome == Stopped(finished=3, n_trials=9, reasons=("exhausted", "timeout"))
    # Only a timeout: there is no total to reach.
    assert judge(result({"w1": 0}), finished=4, n_trials=None) == Stopped(4, None, ())


def test_a_user_error_names_the_first_worker_in_plan_order_and_its_line() -> None:
    codes = {"w10": 2, "w2": 2, "w1": -9, "w3": 0}
    errors = {"w2": "stopped after 1 failed trials in a row", "w10": "other"}
    outcome = judge(result(codes, errors=errors), finished=0, n_trials=2)
    assert outcome == WorkerFailed(
        finished=0,
        n_trials=2,
        worker="w2",
        error="stopped after 1 failed trials in a row",
        others=("w10",),
    )
    # A worker that exited 2 without an error line says so.
    outcome = judge(result({"w1": 2}), finished=0, n_trials=2)
    assert isinstance(outcome, WorkerFailed) and outcome.error == "exit 2 with no error line"


def test_workers_that_died_are_listed_in_plan_order() -> None:
    outcome = judge(result({"w10": 1, "w2": -9, "w1": 0}), finished=1, n_trials=4)
    assert outcome == Died(finished=1, n_trials=4, exits=(("w2", -9), ("w10", 1)))
