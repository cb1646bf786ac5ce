"""``hpo run --dry-run`` prints YAML throughout: no Python reprs beside the config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from hpo.testing.studies import tiny_study

CliRun = Callable[..., tuple[int, str, str]]


def test_the_dry_run_prints_settings_and_sampled_values_as_yaml(
    tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    study_file = tmp_path / "tiny.yaml"
    focal = {"gamma": {"float": [0.5, 2.0]}}
    space = {
        "train.loss": {"choice": {"focal": focal}},  # one branch: the sample is known
        "train.batch_size": {"choice": [16]},
    }
    study = {"sampler": {"name": "random", "seed": 3}, "pruner": {"name": "none"}}
    study_file.write_text(tiny_study(demo_data, study=study, search_space=space))
    code, out, err = run_cli("run", "--study", "tiny", "--config", study_file, "--dry-run")
    assert code == 0, err
    assert "{'" not in out and "':" not in out  # no dict reprs
    lines = out.splitlines()
    sampler = next(line for line in lines if line.startswith("sampler: "))
    assert sampler == "sampler: {name: random, seed: 3} | pruner: {name: none}"
    # Each searched key, its range, and the value the config below was built from, as YAML.
    loss = next(line for line in lines if line.startswith("  train.loss: "))
    sampled = yaml.safe_load(loss.split("  -> ", 1)[1])
    assert sampled["name"] == "focal" and 0.5 <= sampled["gamma"] <= 2.0
    size = next(line for line in lines if line.startswith("  train.batch_size: "))
    assert size.endswith("  -> 16")
    config = yaml.safe_load(out.split("would write for it):\n", 1)[1].rsplit("dry run:", 1)[0])
    assert config["train"]["loss"] == {**config["train"]["loss"], **sampled}
