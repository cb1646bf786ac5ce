"""The one table of samples, the problems readers find, and CSV reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import Problem, Samples, load_samples
from hpo.data._table import raise_problems, read_csv
from hpo.exceptions import DataError


def test_subset_keeps_rows_in_order(demo_root: Path) -> None:
    samples = load_samples(DataConfig(root=demo_root))
    sub = samples.subset(np.array([5, 0, 7]))
    assert sub.paths == [samples.paths[i] for i in (5, 0, 7)]
    assert sub.labels.tolist() == samples.labels[[5, 0, 7]].tolist()
    assert sub.class_names == samples.class_names and sub.format == "mask"
    assert len(samples.subset(samples.labels == 0)) == int((samples.labels == 0).sum())


def test_columns_of_different_length_are_refused() -> None:
    with pytest.raises(ValueError, match="paths 2, labels 1"):
        Samples(
            paths=[Path("a.png"), Path("b.png")],
            labels=np.array([0]),
            groups=np.array(["a", "b"], dtype=object),
            strata=np.array([0, 1]),
            class_names=["x", "y"],
            format="folder",
        )


def test_a_problem_names_the_file_and_line() -> None:
    assert str(Problem(Path("/d/train.csv"), "bad age", line=3)) == "/d/train.csv:3: bad age"
    assert str(Problem(Path("/d/x.jpg"), "cannot decode")) == "/d/x.jpg: cannot decode"


def test_raise_problems_names_the_first_and_counts_the_rest() -> None:
    raise_problems([], Path("/d"))  # nothing to raise
    problems = [
        Problem(Path("/d/a"), "one"),
        Problem(Path("/d/b"), "two"),
        Problem(Path("/d/c"), "x"),
    ]
    with pytest.raises(DataError, match=r"^/d/a: one \(and 2 more problems; `hpo data check /d`"):
        raise_problems(problems, Path("/d"))
    with pytest.raises(DataError, match=r"^/d/a: one$"):
        raise_problems(problems[:1], Path("/d"))


def test_read_csv_strips_values_and_skips_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id, name\n1, a \n\n# note,x\n2,b\n")
    problems: list[Problem] = []
    rows, header = read_csv(path, ["id"], problems, comments=True) or ([], [])
    assert header == ["id", "name"] and problems == []
    assert [(r.line, r.values) for r in rows] == [
        (2, {"id": "1", "name": "a"}),
        (5, {"id": "2", "name": "b"}),
    ]


def test_read_csv_collects_its_problems(tmp_path: Path) -> None:
    problems: list[Problem] = []
    assert read_csv(tmp_path / "none.csv", ["id"], problems) is None
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("id,name\n1\n2,b\n")
    rows, _ = read_csv(ragged, ["id"], problems) or ([], [])
    assert [r.line for r in rows] == [3]
    columns = tmp_path / "columns.csv"
    columns.write_text("name\nb\n")
    assert read_csv(columns, ["id", "age"], problems) is None
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'none.csv'}: file not found",
        f"{ragged}:2: expected 2 values, found 1",
        f"{columns}:1: missing required columns 'id', 'age' (columns found: name)",
    ]
