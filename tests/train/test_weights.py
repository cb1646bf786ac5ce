"""ImageNet weights from a temporary TORCH_HOME: torch's cache, never the network; the offline
error, hash checks, ``hpo models``."""

from __future__ import annotations

import hashlib
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch
import torchvision.models as tvm
import yaml

from hpo.config import ModelSpec, train_config_from_dict
from hpo.exceptions import ConfigError
from hpo.testing.studies import tiny_study
from hpo.testing.weights import place_weights, trust_cached
from hpo.train import weights as weights_mod
from hpo.train.models import build_model
from hpo.train.weights import cache_path, check_weights, fetch, imagenet_weights

from .helpers import CliRun


def _local_only(request: urllib.request.Request | str, *args: Any, **kwargs: Any) -> Any:
    """``urlopen`` that opens ``file:`` URLs and fails every other one, as offline."""
    url = request.full_url if isinstance(request, urllib.request.Request) else request
    if not url.startswith("file:"):
        raise urllib.error.URLError("no network in tests")
    return urllib.request.urlopen(request, *args, **kwargs)


@pytest.fixture
def torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ``TORCH_HOME``, and torch's real downloader with no network behind it."""
    home = tmp_path / "torch"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "urlopen", _local_only)
    return home


def test_imagenet_weights_load_from_torch_cache_with_a_fresh_head(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = place_weights(monkeypatch, "resnet18")
    assert path == torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    saved = torch.load(path, weights_only=True)
    model = build_model(ModelSpec(name="resnet18", weights="imagenet"), num_classes=7)
    for key, value in model.state_dict().items():
        if key.startswith("fc."):
            assert value.shape[0] == 7
        else:
            assert torch.equal(value, saved[key]), key
    # A weight name of the model works too; another is refused with the known ones.
    build_model(ModelSpec(name="resnet18", weights="IMAGENET1K_V1"), num_classes=7)
    with pytest.raises(ConfigError, match="known: imagenet, IMAGENET1K_V1"):
        check_weights(ModelSpec(name="resnet18", weights="IMAGENET1K_V9"))


def test_weights_that_do_not_fit_name_the_keys(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tvm.resnet18(weights=None).state_dict()
    del state["layer1.0.conv1.weight"]
    place_weights(monkeypatch, "resnet18", state)
    with pytest.raises(
        ConfigError, match=r"does not fit model 'resnet18'.*layer1\.0\.conv1\.weight"
    ):
        build_model(ModelSpec(name="resnet18", weights="imagenet"), num_classes=7)


def test_offline_with_nothing_cached_names_the_url_and_the_path(torch_home: Path) -> None:
    weights = imagenet_weights("efficientnet_b0")
    with pytest.raises(ConfigError) as info:
        check_weights(ModelSpec(name="efficientnet_b0", weights="imagenet"))
    message = str(info.value)
    assert weights.url in message
    assert str(torch_home / "hub" / "checkpoints" / Path(weights.url).name) in message
    assert "\n" not in message


def test_cached_weights_are_never_downloaded(
    torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place_weights(
        monkeypatch, "mobilenet_v3_small"
    )  # download_url_to_file raises: it must not be called
    check_weights(ModelSpec(name="mobilenet_v3_small", weights="imagenet"))
    assert weights_mod.download(["mobilenet_v3_small"]) == [
        cache_path(imagenet_weights("mobilenet_v3_small"))
    ]


def test_downloads_are_checked_against_the_hash_in_the_file_name(
    torch_home: Path, tmp_path: Path
) -> None:
    # Served from a file: URL (torch's downloader reads those too), named as torchvision names
    # its files: the first hex digits of the SHA-256 after the last dash.
    content = b"weights" * 1000
    digest = hashlib.sha256(content).hexdigest()[:8]
    served = tmp_path / "served"
    served.mkdir()
    good = served / f"tiny-{digest}.pth"
    good.write_bytes(content)
    bad = served / "tiny-00000000.pth"
    bad.write_bytes(content)

    path = fetch(cast(Any, SimpleNamespace(url=good.as_uri())))
    assert path == torch_home / "hub" / "checkpoints" / good.name
    assert path.read_bytes() == content
    with pytest.raises(ConfigError, match=r"invalid hash value.*place that file at") as info:
        fetch(cast(Any, SimpleNamespace(url=bad.as_uri())))
    assert str(torch_home / "hub" / "checkpoints" / bad.name) in str(info.value)
    # Nothing half-written or unchecked is left in the cache (the lock file is all).
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == sorted([good.name, f"{good.name}.lock", f"{bad.name}.lock"])


def test_models_without_torchvision_weights_refuse_imagenet() -> None:
    with pytest.raises(ConfigError, match="no torchvision weights"):
        train_config_from_dict(
            {"train": {"model": {"name": "small_cnn", "weights": "imagenet"}}}, "c"
        )


def test_cli_models_lists_and_download_fails_in_one_line(
    torch_home: Path, run_cli: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    place_weights(monkeypatch, "resnet18")
    code, out, _ = run_cli("models")  # type: ignore[operator]
    assert code == 0
    # Off a terminal, one tab-separated row per model (name, parameters, weights, cached, ...).
    row = next(line.split("\t") for line in out.splitlines() if line.startswith("resnet18\t"))
    assert row[1] == "11.7M" and row[3] == "yes"
    code, _, err = run_cli("models", "download", "resnet34")  # type: ignore[operator]
    assert code == 2
    assert err.strip().startswith("error: ") and err.strip().count("\n") == 0
    assert "resnet34-" in err


def test_cli_models_download_into_a_dir(
    torch_home: Path,
    tmp_path: Path,
    run_cli: Callable[..., tuple[int, str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "baked"
    weights = imagenet_weights("resnet18")
    cached = cache_path(weights, folder)
    assert cached == folder / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(tvm.resnet18(weights=None).state_dict(), cached)
    trust_cached(monkeypatch, cached)
    # Already in DIR: nothing is downloaded (there is no network), the path is printed.
    code, out, err = run_cli("models", "download", "resnet18", "--dir", folder)
    assert code == 0, err
    assert out.strip() == str(cached)
    # Not in DIR: one line naming the URL and the file's place in DIR, not in TORCH_HOME.
    missing = imagenet_weights("resnet34")
    code, _, err = run_cli("models", "download", "resnet34", "--dir", folder)
    assert code == 2
    assert err.startswith("error: ") and err.strip().count("\n") == 0
    assert missing.url in err and str(cache_path(missing, folder)) in err
    assert not torch_home.exists()


# ---------------------------------------------------------------------------------------------
# Hostile or broken files in the cache: never unpickled with code, found before any study.


class _Payload:
    """Unpickling this creates ``marker``: code run from the weights cache."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def _place_pickle(marker: Path) -> Path:
    """A malicious pickle, saved by ``torch.save``, under mobilenet_v3_small's cache name."""
    path = cache_path(imagenet_weights("mobilenet_v3_small"))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"features.0.0.weight": _Payload(marker)}, path)
    return path


def _model_config(tmp_path: Path, demo_data: Path) -> Path:
    path = tmp_path / "imagenet.yaml"
    config = {
        "data": {"format": "mask", "root": str(demo_data), "image_size": [32, 24]},
        "train": {
            "model": {"name": "mobilenet_v3_small", "weights": "imagenet"},
            "epochs": 1,
            "batch_size": 32,
            "kfold": {"n_splits": 3, "folds": 1},
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _one_error_line(err: str) -> str:
    """The one ``error:`` line, last on stderr (``hpo train`` says what it trains first)."""
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], err
    return errors[0]


def test_a_pickle_in_the_cache_is_never_unpickled(
    torch_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "pwned"
    path = _place_pickle(marker)
    spec = ModelSpec(name="mobilenet_v3_small", weights="imagenet")
    # Its hash cannot match the one in its name: refused unread, naming the file and the fix.
    with pytest.raises(ConfigError) as info:
        check_weights(spec)
    message = str(info.value)
    assert message.startswith(f"train.model.weights: {path}: its SHA-256 starts ")
    assert "delete it, or run `hpo models download mobilenet_v3_small`" in message
    assert "\n" not in message
    with pytest.raises(ConfigError, match="SHA-256"):
        build_model(spec, num_classes=7)
    assert not marker.exists()
    # Even taken for the real file (its hash trusted), it is only read with weights_only=True.
    trust_cached(monkeypatch, path)
    for call in (lambda: check_weights(spec), lambda: build_model(spec, num_classes=7)):
        with pytest.raises(
            ConfigError,
            match=r"state dict \(UnpicklingError: Unsupported global: GLOBAL getattr was not an",
        ):
            call()
    assert not marker.exists()


def test_a_pickle_in_the_cache_stops_hpo_train_and_hpo_run(
    torch_home: Path, tmp_path: Path, demo_data: Path, run_cli: CliRun
) -> None:
    marker = tmp_path / "pwned"
    path = _place_pickle(marker)
    config = _model_config(tmp_path, demo_data)
    code, _, err = run_cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2
    assert f"{path}: its SHA-256 starts" in _one_error_line(err)
    assert not (tmp_path / "run").exists()
    study = _imagenet_study(tmp_path, demo_data)
    code, _, err = run_cli("run", "--study", "net", "--config", study, "--n-trials", 1, "--quiet")
    assert code == 2
    assert f"{path}: its SHA-256 starts" in _one_error_line(err)
    assert not (tmp_path / "net.db").exists()
    assert not marker.exists()


def _imagenet_study(tmp_path: Path, demo_data: Path) -> Path:
    study = {
        "sampler": {"name": "random", "seed": 0},
        "storage": f"sqlite:///{tmp_path / 'net.db'}",
        "artifacts": str(tmp_path / "artifacts"),
    }
    text = yaml.safe_load(tiny_study(demo_data, study=study, search_space={}, epochs=1))
    text["train"]["model"] = {"name": "mobilenet_v3_small", "weights": "imagenet"}
    text["search_space"] = {"train.optimizer.lr": {"float": [0.001, 0.01]}}
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(text))
    return path


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_cached_weights_are_refused_before_the_study(
    damage: str,
    torch_home: Path,
    tmp_path: Path,
    demo_data: Path,
    run_cli: CliRun,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = place_weights(monkeypatch, "mobilenet_v3_small")
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2] if damage == "truncated" else b"\x00" * 4096)
    fix = "delete it, or run `hpo models download mobilenet_v3_small` to fetch it again"
    # `hpo run`: one line naming the file and the fix, and no database, no artifacts.
    study = _imagenet_study(tmp_path, demo_data)
    code, _, err = run_cli("run", "--study", "net", "--config", study, "--n-trials", 1, "--quiet")
    assert code == 2
    line = _one_error_line(err)
    assert f"train.model.weights: {path}: its SHA-256 starts " in line and fix in line
    assert not (tmp_path / "net.db").exists() and not (tmp_path / "artifacts").exists()
    # `hpo train`: the same line, exit 2, no run directory.
    config = _model_config(tmp_path, demo_data)
    code, _, err = run_cli("train", "--config", config, "--out", tmp_path / "run")
    assert code == 2
    assert f"{path}: its SHA-256 starts " in _one_error_line(err)
    assert not (tmp_path / "run").exists()
    # A damaged file that passes the hash check (trusted here) is still found: it must load.
    trust_cached(monkeypatch, path)
    with pytest.raises(ConfigError) as info:
        check_weights(ModelSpec(name="mobilenet_v3_small", weights="imagenet"))
    assert str(info.value).startswith(f"train.model.weights: {path}: not a readable state dict")
    assert fix in str(info.value) and "\n" not in str(info.value)
    # `hpo models download` replaces a file that fails its hash (here: no network, so it says
    # it cannot download, rather than printing the bad file's path as ready).
    monkeypatch.undo()
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.setattr(torch.hub, "urlopen", _local_only)
    code, out, err = run_cli("models", "download", "mobilenet_v3_small")
    assert code == 2 and out == ""
    assert "cannot download" in _one_error_line(err) and str(path) in err


@pytest.mark.parametrize("name", ["googlenet", "inception_v3", "densenet121"])
def test_families_with_their_own_loading_take_cached_weights(
    name: str, torch_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What torchvision's builders do around loading (auxiliary heads, DenseNet's old key names)
    # is repeated when the state dict is loaded here instead.
    torch.manual_seed(0)
    extra = {"aux_logits": True, "init_weights": False} if name != "densenet121" else {}
    state = tvm.get_model_builder(name)(weights=None, **extra).state_dict()
    if name == "densenet121":  # as published: norm.1, conv.2, ..., and no batch counts
        state = {
            re.sub(r"\.(norm|relu|conv)([12])\.", r".\1.\2.", k): v
            for k, v in state.items()
            if not k.endswith("num_batches_tracked")
        }
        assert any(".norm.1." in k for k in state)
    place_weights(monkeypatch, name, state)
    model = build_model(ModelSpec(name=name, weights="imagenet"), num_classes=5)
    own = model.state_dict()
    assert not any(k.startswith(("aux1.", "aux2.", "AuxLogits.")) for k in own)
    checked = 0
    for key, value in own.items():
        published = re.sub(r"\.(norm|relu|conv)([12])\.", r".\1.\2.", key)
        saved = state.get(key, state.get(published))
        if saved is not None and not key.startswith(("fc.", "classifier.")):
            assert torch.equal(value, saved), key
            checked += 1
    head = ("fc.", "classifier.")
    counts = "num_batches_tracked" if name == "densenet121" else "-"  # not published there
    assert checked == len([k for k in own if not k.startswith(head) and not k.endswith(counts)])
