"""hpo score: the join on ids, metrics against scikit-learn, errors naming file and line."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from hpo.cli import main
from hpo.exceptions import DataError
from hpo.score import read_labels, score_files, score_labels


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def truth(tmp_path: Path) -> Path:
    return _csv(tmp_path / "answers.csv", "ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,2\nd.jpg,2\n")


def test_scores_match_sklearn_on_random_labels() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 18, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 18, 500))
    report = score_labels(y_true, y_pred)
    assert report.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report.accuracy == pytest.approx(accuracy_score(y_true, y_pred))
    per_class = f1_score(y_true, y_pred, average=None)
    assert [c.f1 for c in report.per_class] == pytest.approx(list(per_class))
    assert sum(c.support for c in report.per_class) == 500


def test_join_is_by_id_not_row_order(tmp_path: Path, truth: Path) -> None:
    # Same predictions as a perfect submission, rows shuffled; extra columns ignored.
    pred = _csv(tmp_path / "p.csv", "ans,ImageID,note\n2,d.jpg,x\n0,a.jpg,\n2,c.jpg,\n1,b.jpg,\n")
    report = score_files(pred, truth)
    assert report.macro_f1 == 1.0
    assert report.accuracy == 1.0
    assert report.n == 4


def test_folder_predictions_path_pred(tmp_path: Path) -> None:
    truth = _csv(tmp_path / "t.csv", "path,label\ncat/1.jpg,0\ndog/2.jpg,1\n")
    pred = _csv(tmp_path / "p.csv", "path,pred,class_name\ncat/1.jpg,0,cat\ndog/2.jpg,0,cat\n")
    report = score_files(pred, truth)
    assert report.accuracy == 0.5
    assert report.per_class[1].predicted == 0


def test_integer_valued_floats_accepted(tmp_path: Path) -> None:
    labels = read_labels(_csv(tmp_path / "p.csv", "ImageID,ans\na.jpg,3.0\nb.jpg, 4 \n"))
    assert labels == {"a.jpg": 3, "b.jpg": 4}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ImageID,ans\na.jpg,0\nb.jpg,cat\n", "p.csv:3: ans 'cat' is not a class id"),
        ("ImageID,ans\na.jpg,1.5\n", "p.csv:2: ans '1.5' is not a class id"),
        ("ImageID,ans\na.jpg,-1\n", "p.csv:2: ans '-1' is not a class id"),
        (
            "ImageID,ans\na.jpg,0\nb.jpg,18\n",
            "p.csv:3: ans '18' is not a class id (an integer from 0 to 17)",
        ),
        ("ImageID,ans\na.jpg,\n", "p.csv:2: ans is empty"),
        ("ImageID,ans\na.jpg,1\na.jpg,2\n", "p.csv:3: ImageID 'a.jpg' repeats line 2"),
        (
            "id,ans\na.jpg,1\n",
            "p.csv: no id column (expected one of ImageID, path); columns: id, ans",
        ),
        ("ImageID,klass\na.jpg,1\n", "p.csv: no class column (expected one of ans, pred, label)"),
        ("", "p.csv: empty file"),
        ("ImageID,ans\n", "p.csv: no rows below the header"),
    ],
)
def test_read_errors_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(DataError) as exc:
        read_labels(_csv(tmp_path / "p.csv", text))
    assert expected in str(exc.value)


def test_missing_and_extra_ids(tmp_path: Path, truth: Path) -> None:
    short = _csv(tmp_path / "short.csv", "ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,2\n")
    with pytest.raises(
        DataError, match=r"1 of 4 ids in .*answers.csv have no prediction .*'d.jpg'"
    ):
        score_files(short, truth)
    extra = _csv(
        tmp_path / "extra.csv", "ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,2\nd.jpg,2\ne.jpg,1\n"
    )
    with pytest.raises(DataError, match=r"1 ids are not in .*answers.csv \(first: 'e.jpg'\)"):
        score_files(extra, truth)


def test_cli_prints_scores_and_table(
    tmp_path: Path, truth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pred = _csv(tmp_path / "p.csv", "ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,1\nd.jpg,2\n")
    main(["score", "--pred", str(pred), "--truth", str(truth)])
    out = capsys.readouterr().out
    assert "macro-F1 0.7778  accuracy 0.7500  (4 rows, 3 classes)" in out
    assert "0.6667" in out  # per-class F1 of classes 1 and 2


def test_cli_json(tmp_path: Path, truth: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["score", "--pred", str(truth), "--truth", str(truth), "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["macro_f1"] == 1.0
    assert data["n"] == 4
    assert [c["label"] for c in data["per_class"]] == [0, 1, 2]


def test_cli_error_is_one_line_exit_2(
    tmp_path: Path, truth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["score", "--pred", str(tmp_path / "nope.csv"), "--truth", str(truth)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'nope.csv'}: file not found"


def test_classes_have_names_like_metrics_json(
    tmp_path: Path, truth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ImageID files are the competition's: its 18 class names (hpo.data.MASK_CLASS_NAMES).
    pred = _csv(tmp_path / "p.csv", "ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,2\nd.jpg,17\n")
    report = score_files(pred, truth)
    names = {c.label: c.name for c in report.per_class}
    assert names == {
        0: "wear/male/<30",
        1: "wear/male/30-59",
        2: "wear/male/>=60",
        17: "not_wear/female/>=60",
    }
    # Folder predictions name their classes in class_name.
    folder_truth = _csv(tmp_path / "t.csv", "path,label\ncat/1.jpg,0\ndog/2.jpg,1\n")
    folder_pred = _csv(
        tmp_path / "fp.csv", "path,pred,class_name\ncat/1.jpg,0,cat\ndog/2.jpg,1,dog [big]\n"
    )
    report = score_files(folder_pred, folder_truth)
    assert [(c.label, c.name) for c in report.per_class] == [(0, "cat"), (1, "dog [big]")]
    capsys.readouterr()
    main(["score", "--pred", str(folder_pred), "--truth", str(folder_truth)])
    rows = capsys.readouterr().out.splitlines()
    assert any(row.startswith("1\tdog [big]\t") for row in rows)  # id and name, unescaped


# ---------------------------------------------------------------------------------------------
# Truth as a folder of class folders, or as path,class_name; matched by path or file name.


def _image(path: Path, value: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((16, 16, 3), value, dtype=np.uint8)).save(path)


def test_truth_named_by_class_name_only(tmp_path: Path) -> None:
    # Before: "no class column (expected one of ans, pred, label)", although hpo predict
    # writes class_name. Classes compare by name; ids come from the predictions.
    truth = _csv(
        tmp_path / "t.csv", "path,class_name\ncat/1.jpg,cat\ndog/2.jpg,dog\nd/3.jpg,dog\n"
    )
    pred = _csv(
        tmp_path / "p.csv",
        "path,pred,class_name\ncat/1.jpg,1,dog\ndog/2.jpg,1,dog\nd/3.jpg,1,dog\n",
    )
    report = score_files(pred, truth)
    assert report.accuracy == pytest.approx(2 / 3)
    assert [(c.label, c.name, c.support, c.predicted) for c in report.per_class] == [
        (1, "dog", 2, 3),
        (2, "cat", 1, 0),  # never predicted: the next free id
    ]
    assert report.macro_f1 == pytest.approx(f1_score(["c", "d", "d"], ["d"] * 3, average="macro"))


def test_truth_folder_matches_by_path_then_by_file_name(tmp_path: Path) -> None:
    eval_dir = tmp_path / "eval"
    for rel, value in [("cat/a.png", 0), ("cat/b.png", 10), ("dog/c.png", 250)]:
        _image(eval_dir / rel, value)
    by_path = _csv(
        tmp_path / "p.csv",
        "path,pred,class_name\ncat/a.png,0,cat\ncat/b.png,1,dog\ndog/c.png,1,dog\n",
    )
    report = score_files(by_path, eval_dir)
    assert (report.n, report.accuracy) == (3, pytest.approx(2 / 3))
    assert [(c.label, c.name) for c in report.per_class] == [(0, "cat"), (1, "dog")]
    # A data root holding train/ and eval/ is read from eval/, never from train/.
    _image(tmp_path / "train" / "cat" / "t.png", 0)
    _image(tmp_path / "train" / "dog" / "t.png", 250)
    assert score_files(by_path, tmp_path) == report
    # Predictions of a flat copy of the images (or of another folder level): by file name.
    flat = _csv(
        tmp_path / "f.csv", "path,pred,class_name\nb.png,1,dog\nx/c.png,1,dog\na.png,0,cat\n"
    )
    assert score_files(flat, eval_dir) == report
    # Same file name twice, so no file-name join: the missing path is named.
    twice = _csv(
        tmp_path / "2.csv", "path,pred,class_name\n1/a.png,0,cat\n2/a.png,1,dog\nc.png,1,dog\n"
    )
    with pytest.raises(
        DataError, match=r"3 of 3 ids in .*eval have no prediction \(first: 'cat/a.png'\)"
    ):
        score_files(twice, eval_dir)
    # Ids without names cannot be compared with folder names.
    ids_only = _csv(tmp_path / "i.csv", "path,pred\ncat/a.png,0\ncat/b.png,1\ndog/c.png,1\n")
    with pytest.raises(
        DataError, match=r"eval names its classes only and .*i.csv gives class ids"
    ):
        score_files(ids_only, eval_dir)


def test_truth_folder_errors_are_one_line(
    tmp_path: Path, truth: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _image(tmp_path / "nested" / "cat" / "deeper" / "a.png", 0)
    _image(tmp_path / "nested" / "dog" / "b.png", 0)
    with pytest.raises(SystemExit) as exc:
        main(["score", "--pred", str(truth), "--truth", str(tmp_path / "nested")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {tmp_path / 'nested' / 'cat'}: class folder holds folders")
    assert "\n" not in err
    with pytest.raises(SystemExit):
        main(["score", "--pred", str(truth), "--truth", str(tmp_path / "none")])
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'none'}: file not found"


def test_help_says_what_pred_and_truth_accept(run_cli: Any) -> None:
    code, out, _ = run_cli("score", "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "path,pred,class_name" in text
    assert "a folder of class folders, labels from the folder names" in text
    assert "path,class_name" in text


def test_predict_then_score_a_real_folder_data_set(tmp_path: Path, run_cli: Any) -> None:
    # A trained tiny folder run: bright images are one class, dark ones the other.
    data = tmp_path / "shapes"
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("eval", 4)):
        for name, low in (("bright", 180), ("dark", 0)):
            for k in range(n):
                _image(data / split / name / f"{split[0]}{k}.png", int(low + rng.integers(0, 60)))
    config = tmp_path / "tiny.yaml"
    config.write_text(
        f"data: {{format: folder, root: {data}, image_size: [16, 16]}}\n"
        "train:\n"
        "  model: {name: small_cnn, width: 8}\n"
        "  epochs: 2\n"
        "  batch_size: 8\n"
        "  kfold: {n_splits: 2, folds: 1}\n"
        "  augment: {hflip: false, crop_scale: 1.0, color_jitter: 0.0}\n"
    )
    run = tmp_path / "run"
    code, _, err = run_cli(
        "train", "--config", config, "--full", "--device", "cpu", "--quiet", "--out", run
    )
    assert code == 0, err
    pred = tmp_path / "pred.csv"
    # --data is the data root: its eval/ images are predicted, not train/ (issue 26.6).
    code, _, err = run_cli(
        "predict", "--run", run, "--data", data, "--device", "cpu", "--out", pred
    )
    assert code == 0, err
    with pred.open() as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["path"] for r in rows) == sorted(
        f"{c}/e{k}.png" for c in ("bright", "dark") for k in range(4)
    )
    y_true = [r["path"].split("/")[0] for r in rows]
    expected = f1_score(y_true, [r["class_name"] for r in rows], average="macro")
    names_csv = _csv(
        tmp_path / "truth.csv",
        "path,class_name\n" + "".join(f"{r['path']},{r['path'].split('/')[0]}\n" for r in rows),
    )
    for truth in (data / "eval", data, names_csv):
        code, out, err = run_cli("score", "--pred", pred, "--truth", truth, "--json")
        assert code == 0, err
        scores = json.loads(out)
        assert scores["n"] == 8
        assert scores["macro_f1"] == pytest.approx(expected)
        assert {c["name"] for c in scores["per_class"]} <= {"bright", "dark"}
