"""Every study file shipped in studies/ is valid and searches what the issue asks for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hpo.space import Conditional, parse_space
from hpo.study import load_study_spec
from hpo.study._storage import check_study_name

STUDIES = sorted((Path(__file__).parents[2] / "studies").glob("*.yaml"))


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_study_file_is_valid(path: Path) -> None:
    spec = load_study_spec(path)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    assert space.params


def test_mask_clf_searches_the_agreed_parameters() -> None:
    path = next(p for p in STUDIES if p.stem == "mask-clf")
    spec = load_study_spec(path)
    space = parse_space(spec.search_space, base=spec.fixed_dict(), source=str(path))
    for key in (
        "train.optimizer.lr",
        "train.optimizer.name",
        "train.optimizer.weight_decay",
        "train.batch_size",
        "train.kfold.n_splits",
    ):
        assert key in space.params
    scheduler, loss = space.params["train.scheduler"], space.params["train.loss"]
    assert isinstance(scheduler, Conditional) and set(scheduler.branches) == {
        "step",
        "cosine",
        "plateau",
    }
    assert isinstance(loss, Conditional) and set(loss.branches) == {
        "cross_entropy",
        "focal",
        "label_smoothing",
        "f1",
    }


@pytest.mark.parametrize("name", ["", "../evil", "/tmp/evil", ".hidden", "a/b", "x.yaml", "a b"])
@pytest.mark.parametrize("command", [("run", "--n-trials", "1"), ("export",), ("dashboard",)])
def test_unsafe_study_names_are_refused_before_anything_is_written(
    name: str,
    command: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_cli: Callable[..., tuple[int, str, str]],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    code, _, err = run_cli(*command, "--study", name)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: study name {name!r} is not allowed: use letters, digits, '.', '_' and '-' "
        "(up to 128), starting with a letter or digit, without '.yaml' (e.g. mask-clf)"
    ]
    assert [p.name for p in tmp_path.rglob("*")] == ["studies"]


@pytest.mark.parametrize("name", ["mask-clf", "exp_2.v3", "A1"])
def test_plain_study_names_are_allowed(name: str) -> None:
    assert check_study_name(name) == name
