"""hpo score: the join on ids, metrics against scikit-learn, errors naming file and line."""

from __future__ import annotations

import json
from pathlib import Path

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
    assert any(" 1 " in row and "dog [big]" in row for row in rows)  # id and name, unescaped
