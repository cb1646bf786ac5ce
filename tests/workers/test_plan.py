"""The plan of several workers: devices, slots and CPU threads, and the settings it refuses."""

from __future__ import annotations

import pytest

from hpo.exceptions import ConfigError
from hpo.workers import PlanError, plan_workers


def test_plan_divides_the_cores_and_names_the_workers() -> None:
    plans = plan_workers(devices=None, workers_per_device=None, workers=3, cores=8)
    assert plans is not None
    assert [(p.name, p.device, p.threads) for p in plans] == [
        ("w1", "cpu", 2),
        ("w2", "cpu", 2),
        ("w3", "cpu", 2),
    ]
    # More workers than cores: one thread each, never zero.
    plans = plan_workers(devices=None, workers_per_device=None, workers=4, cores=2, force=True)
    assert plans is not None and {p.threads for p in plans} == {1}
    plans = plan_workers(
        devices="cuda:0,cuda:2", workers_per_device=2, workers=None, cuda_count=4, cores=16
    )
    assert plans is not None
    assert [p.device for p in plans] == ["cuda:0", "cuda:0", "cuda:2", "cuda:2"]
    assert {p.threads for p in plans} == {4}
    plans = plan_workers(
        devices="all", workers_per_device=None, workers=None, cuda_count=3, cores=16
    )
    assert plans is not None and [p.device for p in plans] == ["cuda:0", "cuda:1", "cuda:2"]
    # No setting: one worker in the process, as before.
    assert plan_workers(devices=None, workers_per_device=None, workers=None) is None


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"devices": "cuda:7", "cuda_count": 4},
            "devices 'cuda:7': no device cuda:7 (available: cuda:0..cuda:3)",
        ),
        ({"devices": "cuda:1", "cuda_count": 1}, "no device cuda:1 (available: cuda:0)"),
        (
            {"devices": "gpu0", "cuda_count": 2},
            "devices 'gpu0': expected all or cuda:K[,cuda:K...], got 'gpu0' "
            "(available: cuda:0..cuda:1)",
        ),
        (
            {"devices": "cuda:0,cuda:0", "cuda_count": 2},
            "cuda:0 listed twice; use workers_per_device M for several workers on one device",
        ),
        (
            {"devices": "all", "cuda_count": 0},
            "devices 'all': no CUDA devices on this machine; for CPU workers use workers N",
        ),
        (
            {"devices": "all", "workers": 2, "cuda_count": 1},
            "workers N starts CPU workers; with devices use workers_per_device M",
        ),
        (
            {"workers_per_device": 2},
            "workers_per_device needs devices (for CPU workers: workers N)",
        ),
        (
            {"devices": "all", "workers_per_device": 0, "cuda_count": 1},
            "workers_per_device must be at least 1, got 0",
        ),
        ({"workers": 0}, "workers must be at least 1, got 0"),
    ],
)
def test_plan_refusals_name_the_settings_not_flags(
    settings: dict[str, object], expected: str
) -> None:
    arguments: dict[str, object] = {"devices": None, "workers_per_device": None, "workers": None}
    with pytest.raises(PlanError) as info:
        plan_workers(**{**arguments, **settings})  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert "--" not in str(info.value)
    assert isinstance(info.value, ConfigError)  # a user error: one line, exit 2


def test_a_front_end_names_the_settings_its_own_way() -> None:
    with pytest.raises(PlanError) as info:
        plan_workers(devices="{0}", workers_per_device=None, workers=None, cuda_count=1)
    # The user's value is quoted as given, never read as part of the message's template.
    assert info.value.render({"devices": "DEV", "workers_per_device": "PER", "workers": "N"}) == (
        "DEV '{0}': expected all or cuda:K[,cuda:K...], got '{0}' (available: cuda:0)"
    )


def test_more_workers_than_cores_are_refused_unless_forced() -> None:
    with pytest.raises(PlanError) as info:
        plan_workers(devices=None, workers_per_device=None, workers=500, cores=2)
    assert str(info.value) == (
        "workers 500: 500 worker processes but this machine has 2 core(s) for them; start at "
        "most 2, or add force_workers to start them anyway"
    )
    with pytest.raises(PlanError) as info:
        plan_workers(devices="all", workers_per_device=3, workers=None, cuda_count=2, cores=4)
    assert info.value.render(
        {"devices": "--devices", "workers_per_device": "--per", "workers": "--workers",
         "force_workers": "--force"}
    ).startswith("--devices 'all' with --per 3: 6 worker processes")  # fmt: skip
    # As many workers as cores is fine, and forcing starts more (one thread each).
    plans = plan_workers(devices=None, workers_per_device=None, workers=2, cores=2)
    assert plans is not None and len(plans) == 2
    plans = plan_workers(devices=None, workers_per_device=None, workers=5, cores=2, force=True)
    assert plans is not None and len(plans) == 5 and {p.threads for p in plans} == {1}
