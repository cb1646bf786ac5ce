"""studies/mask-clf-gpu.yaml: valid as shipped, one tiny trial on CPU with a small model, and
the offline error before any trial when its ImageNet weights are not cached."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision.models as tvm

from hpo.study import load_study_spec
from hpo.testing.weights import trust_cached

CliRun = Callable[..., tuple[int, str, str]]
STUDY = Path(__file__).resolve().parents[2] / "studies" / "mask-clf-gpu.yaml"


def run_gpu_study(run_cli: CliRun, tmp_path: Path, demo_data: Path, *sets: str) -> tuple[int, str]:
    """One trial of the shipped GPU study with mobilenet_v3_small from ImageNet weights."""
    args: list[object] = ["run", "--study", "mask-clf-gpu", "--config", STUDY, "--n-trials", 1]
    args += ["--quiet", "--storage", f"sqlite:///{tmp_path / 'gpu.db'}"]
    settings = [
        f"data.root={demo_data}",
        f"data.cache_dir={tmp_path / 'cache'}",
        f"study.artifacts={tmp_path / 'artifacts'}",
        "train.model={name: mobilenet_v3_small, weights: imagenet}",
        *sets,
    ]
    for setting in settings:
        args += ["--set", setting]
    code, _, err = run_cli(*args)
    return code, err


def test_the_gpu_study_is_valid_as_shipped() -> None:
    from hpo.space import parse_space

    spec = load_study_spec(STUDY)
    base = spec.base_config()
    assert base.train.model.weights == "imagenet"
    assert base.data.crop is not None
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(STUDY))
    models = {c.train.model.name for c in space.extreme_configs(spec.fixed_dict(), "s")}
    assert {"efficientnet_b0", "resnet34", "convnext_tiny", "swin_t"} <= models


def test_one_tiny_trial_on_cpu(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    weights = tvm.MobileNet_V3_Small_Weights.DEFAULT
    cached = tmp_path / "torch" / "hub" / "checkpoints" / Path(weights.url).name
    cached.parent.mkdir(parents=True)
    torch.save(tvm.mobilenet_v3_small(weights=None).state_dict(), cached)
    trust_cached(monkeypatch, cached)  # made up, so not the file its name's hash stands for
    shipped = sorted(STUDY.parent.iterdir())
    sets = ["data.image_size=[32,24]", "train.epochs=1", "train.batch_size=32"]
    code, err = run_gpu_study(run_cli, tmp_path, demo_data, *sets, "train.kfold.n_splits=3")
    assert code == 0, err
    assert sorted(STUDY.parent.iterdir()) == shipped  # nothing written beside the shipped file
    assert any((tmp_path / "artifacts").iterdir())


def test_offline_with_nothing_cached_stops_before_any_trial(
    tmp_path: Path, demo_data: Path, run_cli: CliRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An empty TORCH_HOME, and torch's own downloader with no network behind it.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(request: urllib.request.Request | str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network in tests")

    monkeypatch.setattr(torch.hub, "urlopen", offline)
    db = tmp_path / "gpu.db"
    code, err = run_gpu_study(run_cli, tmp_path, demo_data)
    weights = tvm.MobileNet_V3_Small_Weights.DEFAULT
    place = tmp_path / "torch" / "hub" / "checkpoints" / Path(weights.url).name
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert weights.url in err and str(place) in err
    assert not place.exists()
    assert not db.exists()  # refused before the study was opened: no trial, no database
    assert not (tmp_path / "cache").exists() and not (tmp_path / "artifacts").exists()
