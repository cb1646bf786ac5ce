"""hpo ensemble: greedy selection on out-of-fold probabilities, the ensemble file, and the path
from a study to a submission (export --top, train --folds all, ensemble, predict, score)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from hpo.cli import main
from hpo.config import train_config_from_dict
from hpo.ensemble import (
    Ensemble,
    OutOfFold,
    align_oof,
    greedy_select,
    load_ensemble,
    load_oof,
    tune_class_weights,
    write_ensemble,
)
from hpo.exceptions import ConfigError
from hpo.predict import predict_run, predict_runs
from hpo.score import score_files
from hpo.testing.studies import tiny_config

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _two_class(p1: list[float]) -> np.ndarray:
    p = np.asarray(p1)
    return np.stack([1 - p, p], axis=1)


def test_greedy_selection_matches_the_hand_computed_steps() -> None:
    labels = np.array([0, 0, 1, 1])
    # Alone: A predicts 0,0,1,0 (macro-F1 (0.8 + 2/3) / 2 = 0.7333), B 0,1,0,1 (0.5), C 1,0,1,1
    # (0.7333, a tie with A that goes to A, the lower index).
    a = _two_class([0.2, 0.2, 0.9, 0.4])
    b = _two_class([0.3, 0.6, 0.3, 0.9])
    c = _two_class([0.7, 0.1, 0.8, 0.8])
    # Step 2: A+A = A (0.7333); A+B = 0.25,0.4,0.6,0.65 -> 0,0,1,1 (1.0); A+C = 0.45,0.15,0.85,0.6
    # -> 0,0,1,1 (1.0): B, the lower index. Step 3: A+B+A = 0.23,0.33,0.7,0.57 -> 1.0, A first.
    # The kept ensemble is the shortest prefix with the best score: A and B, one each.
    sel = greedy_select([a, b, c], labels, size=3)
    assert sel.alone == pytest.approx([(0.8 + 2 / 3) / 2, 0.5, (0.8 + 2 / 3) / 2])
    assert [pick for pick, _ in sel.steps] == [0, 1, 0]
    assert [score for _, score in sel.steps] == pytest.approx([(0.8 + 2 / 3) / 2, 1.0, 1.0])
    assert sel.kept == 2
    assert sel.counts == [1, 1, 0]
    assert sel.weights == pytest.approx([0.5, 0.5, 0.0])
    assert sel.score == pytest.approx(1.0)


def test_selection_repeats_a_run_to_weight_it() -> None:
    labels = np.array([0, 1, 1])
    # A alone: 0,1,0 (one miss); B alone: 1,1,1. A+B: 0.45,0.85,0.55 -> 0,1,1: perfect at step 2.
    a = _two_class([0.1, 0.9, 0.4])
    b = _two_class([0.8, 0.8, 0.7])
    sel = greedy_select([a, b], labels, size=1)
    assert (sel.steps, sel.counts) == ([(0, pytest.approx(2 / 3))], [1, 0])
    sel = greedy_select([a, b], labels, size=4)
    assert sel.steps[1] == (1, pytest.approx(1.0))
    assert sel.kept == 2
    assert sel.weights == pytest.approx([0.5, 0.5])


def test_class_weights_tuned_on_oof_rows() -> None:
    labels = np.array([0, 0, 1, 1])
    # Plain argmax says 0 everywhere (macro-F1 (2/3 + 0) / 2); class 1 wins its two rows once
    # its weight is more than 0.55/0.45 = 1.22 times class 0's and less than 0.8/0.2 = 4.
    proba = _two_class([0.1, 0.2, 0.4, 0.45])
    weights, score = tune_class_weights(proba, labels)
    assert score == pytest.approx(1.0)
    assert 1.5 < weights[1] / weights[0] < 4.0
    assert ((proba * weights).argmax(1) == labels).all()
    # Nothing to gain: the weights stay 1.
    assert tune_class_weights(_two_class([0.1, 0.2, 0.6, 0.7]), labels) == ([1.0, 1.0], 1.0)


def _oof(name: str, paths: list[str], labels: list[int], proba: np.ndarray) -> OutOfFold:
    return OutOfFold(Path(name), paths, np.asarray(labels), proba, ["a", "b"])


def test_oof_rows_join_by_path_and_refuse_other_rows() -> None:
    p = _two_class([0.1, 0.2, 0.9])
    first = _oof("r1", ["x", "y", "z"], [0, 0, 1], p)
    shuffled = _oof("r2", ["z", "x", "y"], [1, 0, 0], p[[2, 0, 1]] * 0.5 + 0.25)
    labels, probas = align_oof([first, shuffled])
    assert labels.tolist() == [0, 0, 1]
    np.testing.assert_allclose(probas[1], p * 0.5 + 0.25)
    other = _oof("r3", ["x", "y", "w"], [0, 0, 1], p)
    with pytest.raises(ConfigError, match=r"r1 and r3 do not share their out-of-fold rows"):
        align_oof([first, other])
    relabelled = _oof("r4", ["x", "y", "z"], [0, 1, 1], p)
    with pytest.raises(ConfigError, match=r"label 'y' differently"):
        align_oof([first, relabelled])


def test_ensemble_file_round_trip_with_relative_paths(tmp_path: Path) -> None:
    runs = [tmp_path / "runs" / "a", tmp_path / "runs" / "b"]
    ens = Ensemble(runs=runs, weights=[0.75, 0.25], score=0.9, steps=[(runs[0], 0.8)])
    out = write_ensemble(ens, tmp_path / "ens" / "e.yaml", size=4)
    raw = yaml.safe_load(out.read_text())
    assert raw["runs"] == [
        {"run": "../runs/a", "weight": 0.75},
        {"run": "../runs/b", "weight": 0.25},
    ]
    assert raw["steps"] == [{"run": "../runs/a", "macro_f1": 0.8}]
    back = load_ensemble(out)
    assert [p.resolve() for p in back.runs] == [p.resolve() for p in runs]
    assert back.weights == pytest.approx([0.75, 0.25])
    assert not list(out.parent.glob(".*tmp"))
    assert back.class_weights is None
    weighted = Ensemble(runs=runs, weights=[1.0, 0.0], score=0.9, class_weights=[0.5, 2.0])
    assert load_ensemble(write_ensemble(weighted, out, size=1)).class_weights == [0.5, 2.0]
    (tmp_path / "bad.yaml").write_text("runs: [{run: a}]\n")
    with pytest.raises(ConfigError, match=r"runs\[0\] must be"):
        load_ensemble(tmp_path / "bad.yaml")


# ---------------------------------------------------------------------------------------------
# From a study to a submission on the demo data (competition layout).


def _demo_config(root: Path, lr: float) -> dict[str, Any]:
    raw = tiny_config(
        root,
        format="mask",
        optimizer={"name": "adamw", "lr": lr},
        augment={"color_jitter": 0.0},
        n_splits=2,
        folds=1,
    )
    return train_config_from_dict(raw, "test").to_dict()


class Demo:
    def __init__(self, base: Path, data: Path) -> None:
        self.base, self.data = base, data
        self.storage = f"sqlite:///{base / 'studies.db'}"
        self.configs = base / "configs"
        self.runs: list[Path] = []


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, demo_data: Path) -> Demo:
    d = Demo(tmp_path_factory.mktemp("ens"), demo_data)
    study = optuna.create_study(storage=d.storage, study_name="ens", direction="maximize")
    dist = {"train.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)}
    # Trial 2 repeats trial 0's parameters (a retried trial): --top 2 skips it for trial 1.
    for value, lr in [(0.6, 5e-3), (0.5, 2e-2), (0.6, 5e-3)]:
        study.add_trial(
            create_trial(
                params={"train.optimizer.lr": lr},
                distributions=dist,
                value=value,
                user_attrs={"config": _demo_config(demo_data, lr)},
            )
        )
    main(
        ["export", "--study", "ens", "--storage", d.storage, "--top", "2", "--out", str(d.configs)]
    )
    for config in sorted(d.configs.glob("*.yaml")):
        run = d.base / f"run-{config.stem}"
        main(["train", "--config", str(config), "--folds", "all", "--device", "cpu", "--quiet",
              "--out", str(run)])  # fmt: skip
        d.runs.append(run)
    return d


@pytest.mark.slow
def test_export_top_writes_distinct_best_trials(demo: Demo) -> None:
    names = sorted(p.name for p in demo.configs.glob("*.yaml"))
    assert names == ["ens-trial0.yaml", "ens-trial1.yaml"]
    prov = yaml.safe_load((demo.configs / "ens-trial1.yaml").read_text())["provenance"]
    assert (prov["study"], prov["trial"], prov["value"]) == ("ens", 1, 0.5)


@pytest.mark.slow
def test_folds_all_keeps_out_of_fold_probabilities_for_every_image(demo: Demo) -> None:
    metrics = json.loads((demo.runs[0] / "metrics.json").read_text())
    oof = load_oof(demo.runs[0])
    assert len(oof.paths) == len(set(oof.paths)) == metrics["num_samples"]
    assert oof.proba.shape == (metrics["num_samples"], 18)
    np.testing.assert_allclose(oof.proba.sum(axis=1), 1.0, rtol=1e-5)
    with np.load(demo.runs[0] / "oof.npz") as npz:
        assert sorted(set(npz["fold"].tolist())) == [0, 1]
    # The argmax of the kept probabilities is what each fold's validation predictions say.
    for fold in (0, 1):
        rows = (demo.runs[0] / f"fold_{fold}" / "val_predictions.csv").read_text().splitlines()
        by_path = {r.split(",")[0]: int(r.split(",")[2]) for r in rows[1:]}
        index = {p: i for i, p in enumerate(oof.paths)}
        assert all(oof.proba[index[p]].argmax() == pred for p, pred in by_path.items())


@pytest.mark.slow
def test_ensemble_then_predict_and_score(demo: Demo, run_cli: Any, tmp_path: Path) -> None:
    ens_file = tmp_path / "ensemble.yaml"
    args = [a for run in demo.runs for a in ("--run", run)]
    code, out, err = run_cli("ensemble", *args, "--size", "3", "--out", ens_file)
    assert code == 0, err
    assert "step 1: + " in out and "out-of-fold macro-F1" in out
    ens = load_ensemble(ens_file)
    assert abs(sum(ens.weights) - 1) < 1e-6
    sub = tmp_path / "sub.csv"
    code, out, err = run_cli(
        "predict", "--ensemble", ens_file, "--data", demo.data, "--device", "cpu", "--out", sub
    )
    assert code == 0, err
    report = score_files(sub, demo.data / "eval" / "answers.csv")
    assert report.n > 0 and 0.0 <= report.macro_f1 <= 1.0
    # Two runs with explicit weights: the mean of each run's probabilities, as predicted alone.
    cpu = torch.device("cpu")
    both = predict_runs(demo.runs, demo.data, device=cpu, weights=[3, 1])
    singles = [predict_run(r, demo.data, device=cpu).proba for r in demo.runs]
    np.testing.assert_allclose(both.proba, 0.75 * singles[0] + 0.25 * singles[1], atol=1e-6)
    assert both.mode == "runs" and both.n_models == 4


@pytest.mark.slow
def test_each_run_alone_is_ranked_and_the_best_retrains_on_all_data(
    demo: Demo, run_cli: Any, tmp_path: Path
) -> None:
    args = [a for run in demo.runs for a in ("--run", run)]
    code, out, err = run_cli("ensemble", *args, "--size", "1", "--out", tmp_path / "one.yaml")
    assert code == 0, err
    alone = [line.split() for line in out.splitlines() if line.startswith("alone: ")]
    assert sorted(Path(words[1]) for words in alone) == sorted(demo.runs)
    scores = [float(words[-1]) for words in alone]
    assert scores == sorted(scores, reverse=True)
    # One selection step picks the best run alone, with the score listed for it.
    one = load_ensemble(tmp_path / "one.yaml")
    assert [r.resolve() for r in one.runs] == [Path(alone[0][1]).resolve()]
    assert round(one.score, 4) == scores[0]
    [hint] = [line for line in out.splitlines() if line.startswith("next: ")]
    config = Path(hint.split("--config ")[1].split()[0])
    assert config == Path(alone[0][1]) / "config.yaml"
    code, _, err = run_cli(
        "train", "--config", config, "--full", "--device", "cpu", "--quiet", "--out",
        tmp_path / "full",
    )  # fmt: skip
    assert code == 0, err
    metrics = json.loads((tmp_path / "full" / "metrics.json").read_text())
    assert metrics["mode"] == "full"
    trained = yaml.safe_load((tmp_path / "full" / "config.yaml").read_text())["train"]
    assert trained["optimizer"] == yaml.safe_load(config.read_text())["train"]["optimizer"]


def _copy_run(src: Path, dst: Path, edit: Any) -> Path:
    shutil.copytree(src, dst)
    edit(dst)
    return dst


@pytest.mark.slow
def test_runs_that_differ_are_refused_in_one_line(
    demo: Demo, run_cli: Any, tmp_path: Path
) -> None:
    def bigger(run: Path) -> None:
        text = (
            (run / "config.yaml")
            .read_text()
            .replace("image_size: [32, 24]", "image_size: [64, 48]")
        )
        (run / "config.yaml").write_text(text)

    def fewer_rows(run: Path) -> None:
        with np.load(run / "oof.npz") as npz:
            arrays = {k: npz[k][:-3] for k in npz.files}
        with (run / "oof.npz").open("wb") as f:
            np.savez(f, **arrays)

    a = demo.runs[0]
    resized = _copy_run(a, tmp_path / "resized", bigger)
    code, _, err = run_cli(
        "predict", "--run", a, "--run", resized, "--data", demo.data, "--device", "cpu",
        "--out", tmp_path / "x.csv",
    )  # fmt: skip
    assert code == 2
    assert err.strip().count("\n") == 0
    assert f"runs {a} and {resized} differ in data.image_size ([32, 24] against [64, 48])" in err
    assert not (tmp_path / "x.csv").exists()

    short = _copy_run(a, tmp_path / "short", fewer_rows)
    code, _, err = run_cli("ensemble", "--run", a, "--run", short, "--out", tmp_path / "e.yaml")
    assert code == 2
    assert f"runs {a} and {short} do not share their out-of-fold rows" in err
    assert not (tmp_path / "e.yaml").exists()

    code, _, err = run_cli(
        "predict", "--run", a, "--weights", "1,2", "--data", demo.data, "--out", tmp_path / "y.csv"
    )
    assert code == 2 and "2 weight(s) for 1 run(s)" in err
