"""Round trip on tiny demo data: hpo run, export, train (folds and full), predict, score."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml

from hpo.cli import main
from hpo.config import load_train_config, train_config_from_dict
from hpo.data import load_images
from hpo.demo import make_demo_data
from hpo.predict import ensemble_proba, predict_run
from hpo.score import score_files, score_labels
from hpo.train import predict_proba
from hpo.train.runner import load_models, load_run

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")

STUDY = """\
study:
  sampler: {{name: random, seed: 0}}
  pruner: {{name: none}}
data: {{format: mask, root: {root}, image_size: [32, 24]}}
train:
  model: {{name: small_cnn, width: 8}}
  epochs: 3
  batch_size: 32
  optimizer: {{name: adamw, lr: 0.005}}
  augment: {{color_jitter: 0.0}}
  kfold: {{n_splits: 2, folds: 1}}
search_space:
  train.optimizer.lr: {{float: [3.0e-3, 1.0e-2], log: true}}
  train.scheduler: {{choice: {{cosine: {{}}, step: {{gamma: {{float: [0.3, 0.9]}}}}}}}}
"""


class RoundTrip:
    """Paths of one round trip, built once for the module."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.storage = f"sqlite:///{base / 'studies.db'}"
        self.exported = base / "best.yaml"
        self.run_folds = base / "run-folds"
        self.run_full = base / "run-full"
        self.answers = self.data / "eval" / "answers.csv"

    def submission(self, run: Path, tta: bool) -> Path:
        return self.base / f"{run.name}{'-tta' if tta else ''}.csv"


@pytest.fixture(scope="module")
def rt(tmp_path_factory: pytest.TempPathFactory) -> RoundTrip:
    rt = RoundTrip(tmp_path_factory.mktemp("roundtrip"))
    make_demo_data(rt.data, profiles=40, seed=0, workers=1)  # no process start-up cost
    study_file = rt.base / "rt.yaml"
    study_file.write_text(STUDY.format(root=rt.data))
    common = ["--storage", rt.storage, "--device", "cpu", "--quiet"]
    main(["run", "--study", "rt", "--config", str(study_file), "--n-trials", "2", *common])
    main(["export", "--study", "rt", "--storage", rt.storage, "--out", str(rt.exported)])
    train = ["train", "--config", str(rt.exported), "--device", "cpu", "--quiet"]
    main([*train, "--folds", "all", "--out", str(rt.run_folds)])
    main([*train, "--full", "--out", str(rt.run_full)])
    for run in (rt.run_folds, rt.run_full):
        for tta in (False, True):
            out = rt.submission(run, tta)
            main(["predict", "--run", str(run), "--data", str(rt.data), "--device", "cpu",
                  "--out", str(out), *(["--tta"] if tta else [])])  # fmt: skip
    return rt


def test_export_is_the_best_trial_with_provenance(rt: RoundTrip) -> None:
    study = optuna.load_study(study_name="rt", storage=rt.storage)
    best = study.best_trial
    config = load_train_config(rt.exported)
    prov = config.provenance
    assert prov is not None
    assert (prov["study"], prov["trial"]) == ("rt", best.number)
    assert prov["value"] == pytest.approx(best.value)
    assert prov["fold_scores"] == pytest.approx(best.user_attrs["fold_scores"])
    assert prov["params"] == pytest.approx(best.params)
    assert prov["data_fingerprint"] == study.user_attrs["hpo:data_fingerprint"]
    tuned = train_config_from_dict(best.user_attrs["config"], "trial")
    assert config.model_copy(update={"provenance": None}) == tuned


def test_run_dirs_record_mode(rt: RoundTrip) -> None:
    folds, full = load_run(rt.run_folds), load_run(rt.run_full)
    assert (folds.mode, folds.folds, len(folds.model_paths)) == ("folds", [0, 1], 2)
    assert (full.mode, len(full.model_paths)) == ("full", 1)
    # The run's config is the exported one, naming the folds it trained (--folds all).
    trained = load_train_config(rt.run_folds / "config.yaml").train
    exported = load_train_config(rt.exported).train
    assert trained.kfold.folds == "all"
    assert trained.model_copy(update={"kfold": exported.kfold}) == exported


def test_submission_rows_and_format(rt: RoundTrip) -> None:
    with (rt.data / "eval" / "info.csv").open() as f:
        info = list(csv.reader(f))
    for run in (rt.run_folds, rt.run_full):
        for tta in (False, True):
            with rt.submission(run, tta).open() as f:
                rows = list(csv.reader(f))
            assert rows[0] == info[0] == ["ImageID", "ans"]
            assert [r[0] for r in rows[1:]] == [r[0] for r in info[1:]]
            assert all(r[1].isdigit() and 0 <= int(r[1]) <= 17 for r in rows[1:])


def test_predicted_ensemble_is_mean_of_its_models(rt: RoundTrip) -> None:
    # The mirror-image view (plain --tta, tta=True, also adds the zoom this run trained for).
    pred = predict_run(rt.run_folds, rt.data, device=CPU, tta="hflip")
    info = load_run(rt.run_folds)
    images = load_images(pred.images.paths, info.config.data.image_size).array
    models = load_models(info, CPU)
    singles = [predict_proba(m, images, device=CPU, tta=True) for m in models]
    np.testing.assert_allclose(pred.proba, np.mean(singles, axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pred.proba, ensemble_proba(models, images, device=CPU, tta=True))
    assert (pred.labels == pred.proba.argmax(1)).all()


def test_submission_beats_chance(rt: RoundTrip, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    sub = rt.submission(rt.run_folds, True)
    main(["score", "--pred", str(sub), "--truth", str(rt.answers), "--json"])
    report = json.loads(capsys.readouterr().out)
    # Chance: the same predictions shuffled across rows (same class frequencies, no signal).
    truth = [int(r["ans"]) for r in csv.DictReader(rt.answers.open())]
    pred = [int(r["ans"]) for r in csv.DictReader(sub.open())]
    rng = np.random.default_rng(0)
    chance = np.mean(
        [score_labels(np.array(truth), rng.permutation(pred)).macro_f1 for _ in range(50)]
    )
    majority = np.bincount(truth).max() / len(truth)
    assert report["macro_f1"] > 2 * chance, (report["macro_f1"], chance)
    assert report["accuracy"] > majority, (report["accuracy"], majority)
    assert report["macro_f1"] == pytest.approx(score_files(sub, rt.answers).macro_f1)


def test_predict_errors_are_one_line(rt: RoundTrip, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    cases = [
        (["--run", str(rt.base / "nope"), "--data", str(rt.data)], "not a run directory"),
        (["--run", str(rt.run_full), "--data", str(rt.base / "nodata")], "nodata"),
    ]
    for args, expected in cases:
        with pytest.raises(SystemExit) as exc:
            main(["predict", *args, "--device", "cpu", "--out", str(rt.base / "x.csv")])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], err
    assert not (rt.base / "x.csv").exists()


def test_exported_yaml_is_what_train_reads(rt: RoundTrip) -> None:
    raw = yaml.safe_load(rt.exported.read_text())
    assert set(raw) == {"data", "train", "provenance"}
    assert raw["data"]["root"] == str(rt.data)


def test_unreadable_eval_image(
    rt: RoundTrip, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused with the file named; with data.skip_bad_files every row still gets a class."""
    shutil.copytree(rt.data / "eval", tmp_path / "eval")
    ids = [r["ImageID"] for r in csv.DictReader((tmp_path / "eval" / "info.csv").open())]
    (tmp_path / "eval" / "images" / ids[3]).write_bytes(b"not a jpeg")
    args = ["predict", "--data", str(tmp_path / "eval"), "--device", "cpu"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main([*args, "--run", str(rt.run_full), "--out", str(tmp_path / "a.csv")])
    assert exc.value.code == 2
    assert ids[3] in capsys.readouterr().err

    run = tmp_path / "run"
    shutil.copytree(rt.run_full, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["skip_bad_files"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    main([*args, "--run", str(run), "--out", str(tmp_path / "b.csv")])
    rows = list(csv.DictReader((tmp_path / "b.csv").open()))
    assert [r["ImageID"] for r in rows] == ids
    labels = [int(r["ans"]) for r in rows]
    others = labels[:3] + labels[4:]
    assert labels[3] == np.bincount(others).argmax()  # the most frequent class of the others
