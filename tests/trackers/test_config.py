"""Trackers in a study file and in a training config: validation, the tensorboard shorthand,
refusals before anything is written."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hpo.components import TRACKERS
from hpo.config import load_train_config, tracker_specs
from hpo.exceptions import ConfigError
from hpo.study import load_study_spec
from hpo.testing.studies import tiny_config, write_tiny_study
from tests.components.helpers import run_without_torch

CliRun = Callable[..., tuple[int, str, str]]


def _spec_error(tmp_path: Path, demo_data: Path, **study: Any) -> str:
    path = write_tiny_study(tmp_path, demo_data, epochs=1, **study)
    with pytest.raises(ConfigError) as info:
        load_study_spec(path)
    return str(info.value).removeprefix(f"{path}: ")


@pytest.mark.parametrize(
    ("trackers", "expected"),
    [
        (
            [{"name": "tensorboard", "dir": "tb"}, {"name": "mlfow", "tracking_uri": "x"}],
            "study.trackers[1]: unknown tracker 'mlfow'; known: mlflow, tensorboard, wandb",
        ),
        (
            [{"name": "mlflow", "tracking_uri": "x", "project": "p"}],
            "study.trackers[0].project: unknown parameter of tracker 'mlflow'; known: "
            "tracking_uri, experiment, artifact_location",
        ),
        ([{"name": "wandb"}], "study.trackers[0].project: required by tracker 'wandb'"),
        (
            [{"name": "wandb", "project": "p", "mode": "sometimes"}],
            "study.trackers[0].mode: Input should be 'online' or 'offline' (got 'sometimes')",
        ),
        ([{"tracking_uri": "x"}], "study.trackers[0]: expected a mapping with a tracker name"),
        ("mlflow", "study.trackers: expected a list of trackers like [{name: mlflow"),
    ],
)
def test_a_bad_tracker_is_named_with_what_is_accepted(
    tmp_path: Path, demo_data: Path, trackers: Any, expected: str
) -> None:
    assert _spec_error(tmp_path, demo_data, trackers=trackers).startswith(expected)


def test_study_tensorboard_is_short_for_one_tensorboard_tracker(
    tmp_path: Path, demo_data: Path
) -> None:
    mlflow = {"name": "mlflow", "tracking_uri": "sqlite:///m.db"}
    path = write_tiny_study(tmp_path, demo_data, epochs=1, tensorboard="tb", trackers=[mlflow])
    trackers = load_study_spec(path).study.all_trackers()
    assert [(t.name, t.params.get("dir")) for t in trackers] == [
        ("mlflow", None),
        ("tensorboard", "tb"),
    ]
    both = [{"name": "tensorboard", "dir": "tb2"}]
    message = _spec_error(tmp_path, demo_data, tensorboard="tb", trackers=both)
    assert message.startswith("study.tensorboard and a tensorboard entry of study.trackers")


def test_a_training_config_names_its_bad_tracker(tmp_path: Path, demo_data: Path) -> None:
    path = tmp_path / "best.yaml"
    bad = {"name": "wandb", "project": "p", "projekt": "p"}
    raw = {**tiny_config(demo_data), "trackers": [bad]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"best.yaml: trackers\[0\].projekt: unknown parameter"):
        load_train_config(path)
    raw["trackers"] = [{"name": "wandb", "project": "p", "mode": "offline"}]
    path.write_text(yaml.safe_dump(raw))
    config = load_train_config(path)
    assert config.to_dict()["trackers"] == [
        {"name": "wandb", "project": "p", "entity": None, "mode": "offline", "dir": None}
    ]


def test_validating_trackers_imports_none_of_their_libraries() -> None:
    run_without_torch(
        "from hpo.config import tracker_specs",
        "tracker_specs([{'name': 'mlflow', 'tracking_uri': 'x'}, {'name': 'wandb', "
        "'project': 'p'}, {'name': 'tensorboard', 'dir': 'tb'}], where='x')",
        "assert not {'mlflow', 'wandb', 'tensorboard'} & set(sys.modules)",
    )


@pytest.mark.parametrize("name", TRACKERS.names())
def test_every_tracker_entry_builds_without_its_library(name: str) -> None:
    (spec,) = tracker_specs([{"name": name, **_required(name)}], where="x")
    from hpo.trackers import TrackerContext, open_trackers

    trackers = open_trackers([spec], TrackerContext("s"))
    assert len(trackers.trackers) == 1 and name in trackers.trackers[0].label


def _required(name: str) -> dict[str, str]:
    return {k: "x" for k, v in TRACKERS.parameters(name).items() if v is ...}


@pytest.mark.parametrize(
    ("tracker", "package"),
    [({"name": "mlflow", "tracking_uri": "sqlite:///m.db"}, "mlflow"),
     ({"name": "wandb", "project": "p", "mode": "offline"}, "wandb")],
)  # fmt: skip
def test_a_missing_library_is_one_line_for_run_dry_run_and_train(
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
    tracker: dict[str, str],
    package: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write_tiny_study(tmp_path, demo_data, epochs=1, trackers=[tracker])
    config = tmp_path / "best.yaml"
    config.write_text(yaml.safe_dump({**tiny_config(demo_data), "trackers": [tracker]}))
    monkeypatch.setitem(sys.modules, package, None)  # what `import` does without it
    install = f'pip install {package} (or pip install -e ".[{package}]")'
    for args, where in (
        (("run", "--study", "tiny", "--config", path, "--n-trials", "1"), "study.trackers[0]"),
        (("run", "--study", "tiny", "--config", path, "--dry-run"), "study.trackers[0]"),
        (("train", "--config", config, "--out", "run"), f"{config}: trackers"),
    ):
        code, _, err = run_cli(*args)
        assert code == 2, err
        assert (
            err == f"error: {where}: tracker {package!r} needs the {package} package: {install}\n"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.yaml", "tiny.yaml"]
    # --no-trackers trains without them.
    code, _, err = run_cli("train", "--config", config, "--out", "run", "--quiet", "--no-trackers")
    assert code == 0, err


def test_a_tracker_folder_that_cannot_be_written_is_refused_first(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    for tracker, key in (
        ({"name": "mlflow", "tracking_uri": "sqlite:////proc/m/mlflow.db"}, "tracking_uri"),
        ({"name": "tensorboard", "dir": "/proc/tb"}, "dir"),
    ):
        path = write_tiny_study(tmp_path, demo_data, epochs=1, trackers=[tracker])
        code, _, err = run_cli("run", "--study", "tiny", "--config", path, "--n-trials", "1")
        assert code == 2
        assert err.startswith(f"error: study.trackers[0].{key}: ")
        assert "cannot write in /proc" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]
