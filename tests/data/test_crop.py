"""data.crop: a box of each photo kept before resizing; in the cache key and the fingerprint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig, train_config_from_dict
from hpo.data import data_fingerprint, decode_image, load_images, load_samples
from hpo.exceptions import ConfigError, DataError

SIZE = (16, 12)
FACE = (96, 64, 320, 256)  # the central 320x256 of the 512x384 photos


def photos(root: Path, n: int = 3) -> list[Path]:
    return sorted((root / "train" / "images").glob("*/mask1.*"))[:n]


def test_the_crop_is_the_box_resized(demo_data: Path) -> None:
    from PIL import Image

    path = photos(demo_data, 1)[0]
    cropped = decode_image(path, SIZE, FACE)
    with Image.open(path) as image:
        top, left, h, w = FACE
        want = image.convert("RGB").crop((left, top, left + w, top + h)).resize(SIZE[::-1])
    assert cropped.shape == (*SIZE, 3)
    assert np.abs(cropped.astype(int) - np.asarray(want, dtype=int)).mean() < 8
    assert not np.array_equal(cropped, decode_image(path, SIZE))


def test_crop_is_part_of_the_cache_key_and_the_fingerprint(
    demo_data: Path, tmp_path: Path
) -> None:
    paths = photos(demo_data)
    plain = load_images(paths, SIZE, cache_dir=tmp_path)
    cropped = load_images(paths, SIZE, cache_dir=tmp_path, crop=FACE)
    assert len(list(tmp_path.glob("images-*.npy"))) == 2
    assert not np.array_equal(plain.array, cropped.array)
    cfg = DataConfig(root=demo_data, image_size=SIZE)
    samples = load_samples(cfg)
    with_crop = cfg.model_copy(update={"crop": FACE})
    assert data_fingerprint(cfg, samples) != data_fingerprint(with_crop, samples)


def test_a_crop_outside_the_photo_names_the_file(demo_data: Path, tmp_path: Path) -> None:
    paths = photos(demo_data, 2)
    with pytest.raises(DataError, match="falls outside the 512x384") as info:
        load_images(paths, SIZE, cache_dir=tmp_path, crop=(300, 0, 320, 256))
    assert str(paths[0]) in str(info.value)


def test_crop_is_validated_and_searchable_as_a_setting() -> None:
    cfg = train_config_from_dict({"data": {"crop": [96, 64, 320, 256]}}, "c.yaml")
    assert cfg.data.crop == FACE
    assert cfg.to_dict()["data"]["crop"] == [96, 64, 320, 256]
    with pytest.raises(ConfigError, match="crop"):
        train_config_from_dict({"data": {"crop": [0, 0, 0, 10]}}, "c.yaml")
    from hpo.space import parse_space

    space = parse_space(
        {"data.crop": {"choice": ["96,64,320,256", "0,0,512,384", None]}}, base={}, source="s"
    )
    assert "data.crop" in space.params
    assert train_config_from_dict({"data": {"crop": "0,0,512,384"}}, "c").data.crop == (
        0,
        0,
        512,
        384,
    )
