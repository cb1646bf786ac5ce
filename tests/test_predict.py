"""hpo predict: ensemble averaging, TTA views, eval listings, the submission rows and format."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hpo.exceptions import ConfigError, DataError
from hpo.predict import (
    EvalImages,
    Predictions,
    ensemble_proba,
    find_eval_images,
    predict_run,
    resolve_views,
    upload_images,
    write_predictions,
)
from hpo.testing.studies import tiny_config
from hpo.train import predict_proba
from hpo.train.models import MODELS

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def models() -> list[torch.nn.Module]:
    out = []
    for seed in range(3):
        torch.manual_seed(seed)
        out.append(MODELS.create("small_cnn", num_classes=18, width=8))
    return out


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (10, 32, 24, 3), dtype=np.uint8)


@pytest.mark.parametrize("tta", [False, True])
def test_ensemble_is_mean_of_single_models(
    models: list[torch.nn.Module], images: np.ndarray, tta: bool
) -> None:
    ens = ensemble_proba(models, images, device=CPU, batch_size=4, tta=tta)
    singles = [predict_proba(m, images, device=CPU, batch_size=4, tta=tta) for m in models]
    assert ens.shape == (10, 18)
    np.testing.assert_allclose(ens, np.mean(singles, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ens.sum(axis=1), 1.0, rtol=1e-5)
    # The models differ, so the mean is not just one of them.
    assert not np.allclose(singles[0], singles[1], atol=1e-4)


def test_tta_averages_the_horizontal_flip(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    plain = ensemble_proba(models, images, device=CPU)
    flipped = ensemble_proba(models, np.ascontiguousarray(images[:, :, ::-1]), device=CPU)
    tta = ensemble_proba(models, images, device=CPU, tta=True)
    np.testing.assert_allclose(tta, (plain + flipped) / 2, rtol=1e-4, atol=1e-6)


def test_ensemble_does_not_train_or_keep_grads(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    model = models[0]
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ensemble_proba([model], images, device=CPU)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key  # BatchNorm statistics unchanged
    assert all(p.grad is None for p in model.parameters())


def test_ensemble_needs_a_model(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="at least one model"):
        ensemble_proba([], images, device=CPU)


def test_tta_views_are_every_combination_in_one_forward_pass(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    import torch.nn.functional as F

    model = models[0]
    calls: list[int] = []
    handle = model.register_forward_hook(lambda _m, args, _out: calls.append(len(args[0])))
    try:
        both = ensemble_proba([model], images, device=CPU, batch_size=8, tta=("hflip", "scale"))
    finally:
        handle.remove()
    # 10 images, 4 views, at most 8 inputs a pass: 2 images a pass, 5 passes of 8 inputs.
    assert calls == [8] * 5

    def zoom(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
        h, w = round(32 * 0.95), round(24 * 0.95)
        top, left = (32 - h) // 2, (24 - w) // 2
        crop = t[..., top : top + h, left : left + w]
        back = F.interpolate(crop, size=(32, 24), mode="bilinear", align_corners=False)
        return back.permute(0, 2, 3, 1).numpy()

    # Zooming the normalized input is zooming the pixels (bilinear weights sum to one), so the
    # four views can be rebuilt from float pixels run through the model by hand.
    from hpo.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    def proba(x: np.ndarray) -> np.ndarray:
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(0, 3, 1, 2).float() / 255.0
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        with torch.inference_mode():
            return model((t - mean) / std).softmax(1).numpy()

    x = images.astype(np.float32)
    views = [x, zoom(x), x[:, :, ::-1], zoom(x)[:, :, ::-1]]
    expected = np.mean([proba(v) for v in views], axis=0)
    np.testing.assert_allclose(both, expected, rtol=1e-4, atol=1e-5)


def test_ensemble_refuses_an_unknown_view(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    with pytest.raises(ValueError, match="unknown TTA view 'vflip'"):
        ensemble_proba(models, images, device=CPU, tta="hflip,vflip")


def test_uploaded_images_give_the_same_probabilities(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    on_device = upload_images(images, CPU)
    np.testing.assert_allclose(
        ensemble_proba(models, on_device, device=CPU, tta=True),
        ensemble_proba(models, torch.from_numpy(images), device=CPU, tta=True),
        rtol=1e-6,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_uploads_once_and_matches_the_cpu(
    models: list[torch.nn.Module], images: np.ndarray
) -> None:
    cuda = torch.device("cuda")
    on_device = upload_images(images, cuda)
    assert isinstance(on_device, torch.Tensor) and on_device.device.type == "cuda"
    assert torch.equal(on_device.cpu(), torch.from_numpy(images))
    gpu_models = [m.to(cuda) for m in models]
    try:
        got = ensemble_proba(gpu_models, on_device, device=cuda, tta=("hflip", "scale"), amp=False)
    finally:
        for m in models:
            m.to(CPU)
    want = ensemble_proba(models, images, device=CPU, tta=("hflip", "scale"))
    np.testing.assert_allclose(got, want, atol=2e-3)  # TF32 convolutions on by default


def test_views_follow_the_training_augmentation() -> None:
    from hpo.config import train_config_from_dict

    def config(**augment: object) -> Any:
        return train_config_from_dict({"train": {"augment": augment}}, "test")

    assert resolve_views(config(), True) == ("hflip", "scale")
    assert resolve_views(config(), "all") == ("hflip", "scale")
    assert resolve_views(config(), "scale, hflip") == ("hflip", "scale")
    assert resolve_views(config(), False) == ()
    assert resolve_views(config(hflip=False), True) == ("scale",)
    assert resolve_views(config(hflip=False, crop_scale=1.0), True) == ()
    with pytest.raises(ConfigError, match=r"--tta scale: unsafe for run r, trained with "
                       r"train.augment.crop_scale: 1 \(never cropped\); views safe for it: "
                       r"hflip"):  # fmt: skip
        resolve_views(config(crop_scale=1.0), ["scale"], "run r")
    with pytest.raises(ConfigError, match=r"--tta rotate: unknown view; views: hflip, scale"):
        resolve_views(config(), "rotate")


def _info_csv(eval_dir: Path, ids: list[str], extra: bool = True) -> None:
    (eval_dir / "images").mkdir(parents=True)
    for image_id in ids:
        (eval_dir / "images" / image_id).write_bytes(b"")
    header = "ImageID,ans,note\n" if extra else "ImageID,ans\n"
    rows = "".join(f"{i},,n{k}\n" if extra else f"{i},\n" for k, i in enumerate(ids))
    (eval_dir / "info.csv").write_text(header + rows)


def _predictions(images: EvalImages, labels: list[int], classes: int = 18) -> Predictions:
    proba = np.eye(classes, dtype=np.float32)[labels]
    return Predictions(
        images=images,
        proba=proba,
        labels=np.asarray(labels),
        class_names=[f"c{k}" for k in range(classes)],
        mode="folds",
        n_models=2,
        tta=False,
    )


def test_submission_keeps_rows_order_and_columns(tmp_path: Path) -> None:
    ids = ["f3.jpg", "a1.jpg", "0b.jpg", "e9.jpg"]  # not sorted: order must be info.csv's
    _info_csv(tmp_path / "data" / "eval", ids)
    images = find_eval_images(tmp_path / "data", "mask")
    assert images.keys == ids
    assert images.info_csv == (tmp_path / "data" / "eval" / "info.csv").absolute()
    out = write_predictions(_predictions(images, [17, 0, 5, 5]), tmp_path / "sub" / "s.csv")
    text = out.read_text()
    assert text == "ImageID,ans,note\nf3.jpg,17,n0\na1.jpg,0,n1\n0b.jpg,5,n2\ne9.jpg,5,n3\n"
    assert not list(out.parent.glob(".*tmp"))


def test_submission_rows_match_by_id_not_position(tmp_path: Path) -> None:
    _info_csv(tmp_path / "eval", ["x.jpg", "y.jpg"], extra=False)
    images = find_eval_images(tmp_path / "eval", "mask")
    swapped = EvalImages(
        keys=images.keys[::-1],
        paths=images.paths[::-1],
        root=images.root,
        info_csv=images.info_csv,
    )
    out = write_predictions(_predictions(swapped, [1, 2]), tmp_path / "s.csv")
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["ImageID"], r["ans"]) for r in rows] == [("x.jpg", "2"), ("y.jpg", "1")]


def test_folder_eval_lists_images_recursively(tmp_path: Path) -> None:
    root = tmp_path / "holdout"
    for rel in ["cat/1.jpg", "cat/._1.jpg", "dog/b/2.PNG", "z.jpeg", "notes.txt", ".DS_Store"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    images = find_eval_images(root, "folder")
    assert images.info_csv is None
    assert images.keys == ["cat/1.jpg", "dog/b/2.PNG", "z.jpeg"]
    out = write_predictions(_predictions(images, [1, 0, 1], classes=2), tmp_path / "p.csv")
    assert out.read_text() == (
        "path,pred,class_name\ncat/1.jpg,1,c1\ndog/b/2.PNG,0,c0\nz.jpeg,1,c1\n"
    )


def test_folder_data_root_with_train_and_eval_predicts_eval_only(tmp_path: Path) -> None:
    # The root a folder run trains on (train/<class>/ beside eval/): never its training images.
    for rel in ["train/cat/t1.jpg", "train/dog/t2.jpg", "eval/cat/1.jpg", "eval/2.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    images = find_eval_images(tmp_path, "folder")
    assert images.root == (tmp_path / "eval").absolute()
    assert images.keys == ["2.jpg", "cat/1.jpg"]
    # The eval folder itself, as before.
    assert find_eval_images(tmp_path / "eval", "folder").keys == ["2.jpg", "cat/1.jpg"]


def test_folder_run_uses_info_csv_when_present(tmp_path: Path) -> None:
    _info_csv(tmp_path / "eval", ["a.jpg"])
    assert find_eval_images(tmp_path / "eval", "folder").info_csv is not None


def test_eval_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found"):
        find_eval_images(tmp_path / "empty", "folder")
    with pytest.raises(DataError, match=r"info\.csv"):
        find_eval_images(tmp_path / "empty", "mask")
    with pytest.raises(DataError, match="not found"):
        find_eval_images(tmp_path / "missing", "folder")


# ---------------------------------------------------------------------------------------------
# TTA views follow what the run trained for; multi-run prediction on a `folder` data set.


def _half_bright(path: Path, side: str, rng: np.random.Generator) -> None:
    """A 32x32 image whose class is where its bright half is: mirroring it changes the class."""
    from PIL import Image

    pixels = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
    half = slice(0, 16) if side == "left" else slice(16, 32)
    pixels[:, half] += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _folder_config(root: Path, lr: float) -> dict[str, object]:
    from hpo.config import train_config_from_dict

    raw = tiny_config(
        root,
        format="folder",
        image_size=(32, 32),
        epochs=4,
        batch_size=16,
        optimizer={"name": "adamw", "lr": lr},
        # Never flipped (left/right is the class), random crops kept.
        augment={"hflip": False, "crop_scale": 0.9, "color_jitter": 0.0},
        n_splits=2,
        folds=1,
    )
    return train_config_from_dict(raw, "test").to_dict()


class Sided:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.train, self.eval = base / "train", base / "eval"
        self.truth = base / "truth.csv"
        self.storage = f"sqlite:///{base / 'studies.db'}"
        self.runs: list[Path] = []


@pytest.fixture(scope="module")
def sided(tmp_path_factory: pytest.TempPathFactory) -> Sided:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import create_trial

    from hpo.cli import main

    d = Sided(tmp_path_factory.mktemp("sided"))
    rng = np.random.default_rng(0)
    for k in range(24):
        for side in ("left", "right"):
            _half_bright(d.train / side / f"{k:02d}.png", side, rng)
    rows = ["path,label"]
    for k in range(20):
        side = ("left", "right")[k % 2]
        _half_bright(d.eval / f"e{k:02d}.png", side, rng)
        rows.append(f"e{k:02d}.png,{k % 2}")
    d.truth.write_text("\n".join(rows) + "\n")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=d.storage, study_name="sided", direction="maximize")
    dist = {"train.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)}
    for value, lr in [(0.9, 1e-2), (0.8, 3e-3)]:
        study.add_trial(
            create_trial(
                params={"train.optimizer.lr": lr},
                distributions=dist,
                value=value,
                user_attrs={"config": _folder_config(d.train, lr)},
            )
        )
    configs = d.base / "configs"
    main(
        ["export", "--study", "sided", "--storage", d.storage, "--top", "2", "--out", str(configs)]
    )
    for config in sorted(configs.glob("*.yaml")):
        run = d.base / f"run-{config.stem}"
        main(["train", "--config", str(config), "--folds", "all", "--device", "cpu", "--quiet",
              "--out", str(run)])  # fmt: skip
        d.runs.append(run)
    return d


def _score(pred: Path, truth: Path) -> float:
    from hpo.score import score_files

    return score_files(pred, truth, num_classes=2).macro_f1


def test_tta_never_flips_a_run_trained_without_flips(
    sided: Sided, run_cli: Any, tmp_path: Path
) -> None:
    from hpo.config import load_train_config

    run = sided.runs[0]
    config = load_train_config(run / "config.yaml")
    assert resolve_views(config, True) == ("scale",)
    scores = {}
    for name, flags in {"plain": [], "tta": ["--tta"], "scale": ["--tta", "scale"]}.items():
        out = tmp_path / f"{name}.csv"
        code, stdout, err = run_cli(
            "predict", "--run", run, "--data", sided.eval, "--device", "cpu", "--out", out, *flags
        )
        assert code == 0, err
        scores[name] = _score(out, sided.truth)
    assert "TTA (scale)" in stdout
    assert scores["tta"] >= scores["plain"]
    assert scores["tta"] == scores["scale"]
    # The flip the old --tta always added averages each image with one of the other class.
    from hpo.data import load_images
    from hpo.train.runner import load_models, load_run

    info = load_run(run)
    plain = predict_run(run, sided.eval, device=CPU)
    images = load_images(plain.images.paths, config.data.image_size).array
    with_flip = ensemble_proba(load_models(info, CPU), images, device=CPU, tta=("hflip",))
    truth = np.arange(20) % 2
    assert (with_flip.argmax(1) == truth).mean() < (plain.labels == truth).mean()
    code, _, err = run_cli(
        "predict", "--run", run, "--data", sided.eval, "--device", "cpu", "--tta", "hflip",
        "--out", tmp_path / "no.csv",
    )  # fmt: skip
    assert code == 2
    assert err.strip() == (
        f"error: --tta hflip: unsafe for run {run}, trained with train.augment.hflip: false "
        "(never flipped); views safe for it: scale"
    )
    assert not (tmp_path / "no.csv").exists()


def test_folder_runs_ensemble_predict_and_score(
    sided: Sided, run_cli: Any, tmp_path: Path
) -> None:
    ens = tmp_path / "ensemble.yaml"
    runs = [a for run in sided.runs for a in ("--run", run)]
    code, out, err = run_cli("ensemble", *runs, "--size", "4", "--out", ens, "--thresholds")
    assert code == 0, err
    # Each run alone, four steps, the class weights, the summary.
    assert out.count("out-of-fold macro-F1") == len(sided.runs) + 6
    assert "class weights: " in out
    sub = tmp_path / "sub.csv"
    code, out, err = run_cli(
        "predict", "--ensemble", ens, "--data", sided.eval, "--device", "cpu", "--tta",
        "--out", sub,
    )  # fmt: skip
    assert code == 0, err
    assert "applied the class weights of" in out
    assert sub.read_text().startswith("path,pred,class_name\ne00.png,")
    assert _score(sub, sided.truth) >= 0.9  # the task is easy: bright left or right
