"""ImageNet weights from a temporary TORCH_HOME: torch's cache, never the network; the offline
error, hash checks, ``hpo models``."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import torch
import torchvision.models as tvm

from hpo.config import ModelSpec, train_config_from_dict
from hpo.exceptions import ConfigError
from hpo.train import weights as weights_mod
from hpo.train.models import build_model
from hpo.train.weights import cache_path, check_weights, fetch, imagenet_weights


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


def place_weights(name: str, state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a state dict of the right shapes where torchvision expects ``name``'s weights."""
    weights = imagenet_weights(name)
    if state is None:
        torch.manual_seed(1)
        state = tvm.get_model_builder(name)(weights=None).state_dict()
    path = cache_path(weights)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def test_imagenet_weights_load_from_torch_cache_with_a_fresh_head(torch_home: Path) -> None:
    path = place_weights("resnet18")
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


def test_weights_that_do_not_fit_name_the_keys(torch_home: Path) -> None:
    state = tvm.resnet18(weights=None).state_dict()
    del state["layer1.0.conv1.weight"]
    place_weights("resnet18", state)
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


def test_cached_weights_are_never_downloaded(torch_home: Path) -> None:
    place_weights("mobilenet_v3_small")  # download_url_to_file raises: it must not be called
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
    torch_home: Path, run_cli: object
) -> None:
    place_weights("resnet18")
    code, out, _ = run_cli("models")  # type: ignore[operator]
    assert code == 0
    row = next(line for line in out.splitlines() if " resnet18 " in line)
    assert "11.7M" in row and "yes" in row
    code, _, err = run_cli("models", "download", "resnet34")  # type: ignore[operator]
    assert code == 2
    assert err.strip().startswith("error: ") and err.strip().count("\n") == 0
    assert "resnet34-" in err


def test_cli_models_download_into_a_dir(
    torch_home: Path, tmp_path: Path, run_cli: Callable[..., tuple[int, str, str]]
) -> None:
    folder = tmp_path / "baked"
    weights = imagenet_weights("resnet18")
    cached = cache_path(weights, folder)
    assert cached == folder / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.save(tvm.resnet18(weights=None).state_dict(), cached)
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
