"""The learning-rate ratios a study's schedules allow, and the shipped studies' dead regions."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pytest

from hpo.config import SchedulerSpec
from hpo.lr_check import DEAD_RATIO, schedule_ranges
from hpo.space import parse_space
from hpo.study import load_study_spec
from hpo.testing.studies import tiny_study
from hpo.train.optim import final_lr_ratio

ROOT = Path(__file__).resolve().parents[1]


def test_the_ratio_is_the_rate_of_the_last_epoch() -> None:
    assert final_lr_ratio(SchedulerSpec(name="constant"), epochs=5) == 1.0
    # Epoch-stepped cosine over 16 epochs: the 16th epoch trains at (1 + cos(15 pi / 16)) / 2.
    cosine = final_lr_ratio(SchedulerSpec(name="cosine"), epochs=16)
    assert cosine == pytest.approx((1 + math.cos(15 * math.pi / 16)) / 2)
    # Step: x 0.1 after every epoch -> the 4th epoch trains at 1e-3.
    step = SchedulerSpec(name="step", params={"step_size": 1, "gamma": 0.1})
    assert final_lr_ratio(step, epochs=4) == pytest.approx(1e-3)
    # Plateau on a metric that never improves: cut after each epoch past its patience of 0,
    # the first epoch setting the best: the 4th epoch trains at 0.5 ** 2.
    plateau = SchedulerSpec(name="plateau", params={"factor": 0.5, "patience": 0})
    assert final_lr_ratio(plateau, epochs=4) == pytest.approx(0.25)


def _ranges(text: str, tmp_path: Path) -> dict[str, tuple[float, float, bool]]:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    spec = load_study_spec(path)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    return {
        r.scheduler: (r.low, r.high, r.dead)
        for r in schedule_ranges(space, spec.fixed_dict(), source=str(path))
    }


def test_a_step_schedule_that_never_learns_is_found(tmp_path: Path) -> None:
    found = _ranges(
        "data: {root: data}\n"
        "train: {epochs: 16}\n"
        "search_space:\n"
        "  train.scheduler:\n"
        "    choice:\n"
        "      step: {step_size: {int: [1, 3]}, gamma: {float: [0.1, 0.9]}}\n"
        "      cosine: {}\n",
        tmp_path,
    )
    low, high, dead = found["step"]
    assert dead and low == pytest.approx(1e-15, rel=1e-6)  # 0.1 ** 15
    assert high == pytest.approx(0.9**5)  # step_size 3: 5 cuts in 16 epochs
    assert found["cosine"][2] is False


def test_a_fixed_schedule_and_searched_epochs_are_corners_too(tmp_path: Path) -> None:
    found = _ranges(
        "data: {root: data}\n"
        "train: {epochs: 8, scheduler: {name: step, step_size: 2, gamma: 0.5}}\n"
        "search_space:\n"
        "  train.epochs: {int: [4, 8]}\n",
        tmp_path,
    )
    # Cut after every 2nd epoch: the 8th epoch trains at 0.5 ** 3, the 4th at 0.5.
    assert found == {"step": (pytest.approx(0.125), pytest.approx(0.5), False)}


@pytest.mark.parametrize("name", ["mask-clf", "mask-clf-gpu"])
def test_the_shipped_studies_have_no_dead_schedule(name: str) -> None:
    path = ROOT / "studies" / f"{name}.yaml"
    spec = load_study_spec(path)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    ranges = schedule_ranges(space, spec.fixed_dict(), source=str(path))
    assert ranges
    assert all(r.low >= DEAD_RATIO for r in ranges), ranges


def test_the_dry_run_reports_each_schedule_and_warns_of_a_dead_one(
    tmp_path: Path, demo_data: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    dead = {"step": {"step_size": {"int": [1, 2]}, "gamma": {"float": [0.1, 0.5]}}, "cosine": {}}
    study_file = tmp_path / "tiny.yaml"
    study_file.write_text(
        tiny_study(
            demo_data, study={}, search_space={"train.scheduler": {"choice": dead}}, epochs=6
        )
    )
    code, out, err = run_cli("run", "--study", "tiny", "--config", study_file, "--dry-run")
    assert code == 0, err
    # 6 epochs: x 0.1 after each of the first 5 (1e-5), or x 0.5 after epochs 2 and 4 (0.25).
    assert "per schedule the space can pick:\n  step: 1e-05 .. 0.25\n  cosine:" in out
    (warning,) = [line for line in err.splitlines() if line.startswith("warning: step")]
    assert "step can end at 1.0e-05 of the learning rate (gamma=0.1, step_size=1, epochs=6)" in (
        warning.replace("  ", " ")
    )
    assert not list(tmp_path.glob("*.db"))
