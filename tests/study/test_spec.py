"""Every study file shipped in studies/ is valid and searches what the issue asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpo.space import Conditional, parse_space
from hpo.study import load_study_spec

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
