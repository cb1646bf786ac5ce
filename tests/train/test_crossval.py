"""The cross-validation runner: callbacks in order, early stop, exceptions, grouping, full mode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hpo.config import DataConfig
from hpo.data import DecodedImages, LoadedData, Samples, load_training_data
from hpo.exceptions import ConfigError
from hpo.train import EpochResult, FoldRun, cross_validate, make_splits
from hpo.train.crossval import resolve_folds

from .helpers import CPU, MakeConfig, learnable_data, tiny_fit

PEOPLE, PER_PERSON = 24, 4


@pytest.fixture(scope="module")
def tiny() -> LoadedData:
    """96 learnable 16x16 images of 3 classes, 4 images per person, as a folder-format table."""
    images, labels = learnable_data(PEOPLE * PER_PERSON)
    person = np.arange(len(labels)) // PER_PERSON
    samples = Samples(
        paths=[Path(f"/nowhere/{i}.png") for i in range(len(labels))],
        labels=labels,
        groups=np.asarray([f"p{k:02d}" for k in person], dtype=object),
        strata=(person % 3).astype(np.int64),
        class_names=["a", "b", "c"],
        format="folder",
    )
    decoded = DecodedImages(array=images, ok=np.ones(len(labels), dtype=bool), bad=[])
    return LoadedData(samples, decoded)


@pytest.fixture(scope="module")
def mask_data(demo_data: Path) -> LoadedData:
    """The 24-person demo set in the competition layout, decoded at 16x16."""
    return load_training_data(DataConfig(format="mask", root=demo_data, image_size=(16, 16)))


def _config(make_config: MakeConfig, **overrides: Any) -> Any:
    base = {"train.epochs": 2, "train.kfold.n_splits": 3, "train.kfold.folds": "all"}
    return make_config(**{**base, **overrides})


def test_callbacks_come_epoch_by_epoch_then_fold_by_fold(
    make_config: MakeConfig, tiny: LoadedData
) -> None:
    events: list[tuple[Any, ...]] = []

    def on_epoch_end(fold: int | None, result: EpochResult) -> None:
        events.append(("epoch", fold, result.epoch))

    def on_fold_end(fold: int | None, run: FoldRun) -> None:
        events.append(("fold", fold, run.name, len(run.fit.history)))

    result = cross_validate(
        _config(make_config),
        tiny,
        device=CPU,
        on_epoch_end=on_epoch_end,
        on_fold_end=on_fold_end,
    )
    assert events == [
        e
        for k in range(3)
        for e in [("epoch", k, 1), ("epoch", k, 2), ("fold", k, f"fold_{k}", 2)]
    ]
    assert [f.fold for f in result.folds] == [0, 1, 2] and not result.stopped
    assert [len(f.history) for f in result.folds] == [2, 2, 2]
    assert result.scores == [f.metrics["macro_f1"] for f in result.folds]
    assert result.mean_score == pytest.approx(np.mean(result.scores))
    # Aggregates: the summed confusion counts every sample once (the folds partition the data).
    assert np.asarray(result.confusion).sum() == len(tiny.samples)
    per_class = np.mean([f.per_class_f1 for f in result.folds], axis=0)
    assert result.per_class_f1 == pytest.approx(per_class.tolist())
    assert set(result.mean_metrics) == {"accuracy"}  # no factor F1s outside the mask format


def test_a_fold_is_exactly_what_fit_gives_on_its_split(
    make_config: MakeConfig, tiny: LoadedData
) -> None:
    config = _config(make_config, **{"train.kfold.folds": 1})
    result = cross_validate(config, tiny, device=CPU)
    train_idx, val_idx = make_splits(config, tiny.samples)[0]
    direct = tiny_fit(config, (tiny.images.array, tiny.samples.labels), train_idx, val_idx)
    (fold,) = result.folds
    assert fold.metrics == direct.metrics
    assert _timeless(fold.history) == _timeless(direct.history)
    assert (fold.n_train, fold.n_val) == (len(train_idx), len(val_idx))
    assert fold.confusion == direct.confusion


def _timeless(history: list[EpochResult]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.to_dict().items() if k != "seconds"} for r in history]


def test_on_fold_end_false_stops_after_that_fold(
    make_config: MakeConfig, tiny: LoadedData
) -> None:
    config = _config(make_config, **{"train.epochs": 1})
    seen: list[int | None] = []

    def stop_after_fold_1(fold: int | None, run: FoldRun) -> bool | None:
        seen.append(fold)
        return False if fold == 1 else None  # None goes on, like True

    result = cross_validate(config, tiny, device=CPU, on_fold_end=stop_after_fold_1)
    assert seen == [0, 1]
    assert [f.fold for f in result.folds] == [0, 1] and result.stopped
    assert len(result.scores) == 2


def test_on_epoch_end_false_cuts_that_fold_short_and_keeps_its_last_epoch(
    make_config: MakeConfig, tiny: LoadedData
) -> None:
    epochs: list[tuple[int | None, int]] = []
    runs: list[FoldRun] = []

    def stop_at_fold_1_epoch_1(fold: int | None, result: EpochResult) -> bool:
        epochs.append((fold, result.epoch))
        return (fold, result.epoch) != (1, 1)

    def on_fold_end(fold: int | None, run: FoldRun) -> bool:
        runs.append(run)
        return True  # the run ends after a cut fold all the same

    result = cross_validate(
        _config(make_config),
        tiny,
        device=CPU,
        on_epoch_end=stop_at_fold_1_epoch_1,
        on_fold_end=on_fold_end,
    )
    assert epochs == [(0, 1), (0, 2), (1, 1)]
    assert [(r.fold, r.stopped) for r in runs] == [(0, False), (1, True)]
    assert result.stopped and [f.fold for f in result.folds] == [0, 1]
    whole, cut = result.folds
    assert not whole.stopped and cut.stopped and len(cut.history) == 1
    # The cut fold keeps its validated epoch: per-class F1, confusion, score, all of epoch 1.
    assert cut.score == cut.history[0].macro_f1
    assert cut.per_class_f1 is not None and len(cut.per_class_f1) == 3
    assert np.asarray(cut.confusion).sum() == cut.n_val
    assert np.asarray(result.confusion).sum() == whole.n_val + cut.n_val
    assert cut.to_dict()["stopped"] is True and "stopped" not in whole.to_dict()


class Stop(Exception):
    """A stand-in for optuna.TrialPruned: the engine must not know or catch it."""


@pytest.mark.parametrize("where", ["epoch", "fold"])
def test_exceptions_from_callbacks_propagate_unchanged(
    make_config: MakeConfig, tiny: LoadedData, where: str
) -> None:
    signal = Stop("pruned")
    epochs: list[tuple[int | None, int]] = []

    def on_epoch_end(fold: int | None, result: EpochResult) -> None:
        epochs.append((fold, result.epoch))
        if where == "epoch" and (fold, result.epoch) == (1, 1):
            raise signal

    def on_fold_end(fold: int | None, run: FoldRun) -> None:
        if where == "fold" and fold == 0:
            raise signal

    with pytest.raises(Stop) as caught:
        cross_validate(
            _config(make_config),
            tiny,
            device=CPU,
            on_epoch_end=on_epoch_end,
            on_fold_end=on_fold_end,
        )
    assert caught.value is signal
    assert epochs == ([(0, 1), (0, 2), (1, 1)] if where == "epoch" else [(0, 1), (0, 2)])


def test_no_person_is_in_both_train_and_validation(
    make_config: MakeConfig, mask_data: LoadedData
) -> None:
    config = _config(make_config, **{"train.epochs": 1})
    groups = mask_data.samples.groups
    val_groups: list[set[str]] = []

    def on_fold_end(fold: int | None, run: FoldRun) -> None:
        assert run.val_idx is not None
        train, val = set(groups[run.train_idx]), set(groups[run.val_idx])
        assert train and val and not train & val
        assert len(run.train_idx) + len(run.val_idx) == len(groups)
        val_groups.append(val)

    result = cross_validate(config, mask_data, device=CPU, on_fold_end=on_fold_end)
    assert len(val_groups) == 3
    assert set().union(*val_groups) == set(groups)  # every person validated exactly once
    assert sum(map(len, val_groups)) == len(set(groups))
    # The competition's labels: factor F1s averaged, an 18 x 18 confusion over every image.
    assert {"f1_mask", "f1_gender", "f1_age", "accuracy"} == set(result.mean_metrics)
    assert np.asarray(result.confusion).shape == (18, 18)
    assert np.asarray(result.confusion).sum() == len(groups)


def test_full_trains_once_on_all_data_without_validation(
    make_config: MakeConfig, tiny: LoadedData
) -> None:
    config = _config(make_config, **{"train.epochs": 1})
    epochs: list[int | None] = []
    runs: list[FoldRun] = []
    result = cross_validate(
        config,
        tiny,
        device=CPU,
        full=True,
        on_epoch_end=lambda fold, r: epochs.append(fold),
        on_fold_end=lambda fold, run: runs.append(run),
    )
    assert epochs == [None]
    (run,) = runs
    assert run.fold is None and run.name == "full" and run.val_idx is None
    assert run.fit.val_pred is None and run.score is None
    np.testing.assert_array_equal(run.train_idx, np.arange(len(tiny.samples)))
    (fold,) = result.folds
    assert (fold.n_train, fold.n_val) == (len(tiny.samples), 0)
    assert fold.per_class_f1 is None and fold.confusion is None
    assert "macro_f1" not in fold.metrics and fold.history[0].macro_f1 is None
    assert result.mean_score is None and result.scores == [] and result.confusion is None
    assert result.per_class_f1 == [] and result.mean_metrics == {}
    record = fold.to_dict()
    assert record["part"] == "full" and record["fold"] is None
    assert "per_class_f1" not in record and "confusion" not in record
    with pytest.raises(ValueError, match="exclude each other"):
        cross_validate(config, tiny, device=CPU, full=True, folds=[0])


def test_given_splits_are_used_as_they_are(
    make_config: MakeConfig, tiny: LoadedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(make_config, **{"train.epochs": 1, "train.kfold.folds": 2})
    splits = make_splits(config, tiny.samples)

    def no_splitting(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("splits were given: the runner must not split again")

    monkeypatch.setattr("hpo.train.crossval.kfold_splits", no_splitting)
    seen: list[np.ndarray | None] = []
    cross_validate(
        config,
        tiny,
        device=CPU,
        splits=splits,
        on_fold_end=lambda fold, run: seen.append(run.val_idx),
    )
    assert len(seen) == 2
    for (_, val), got in zip(splits[:2], seen, strict=True):
        np.testing.assert_array_equal(val, got)
    with pytest.raises(ValueError, match="2 splits given, n_splits=3"):
        cross_validate(config, tiny, device=CPU, splits=splits[:2])


def test_chosen_folds_train_in_order_and_unknown_ones_are_refused(
    make_config: MakeConfig, tiny: LoadedData
) -> None:
    config = _config(make_config, **{"train.epochs": 1})
    result = cross_validate(config, tiny, device=CPU, folds=[2, 0])
    assert [f.name for f in result.folds] == ["fold_0", "fold_2"]
    with pytest.raises(ConfigError, match="fold 3 does not exist"):
        cross_validate(config, tiny, device=CPU, folds=[3])


@pytest.mark.parametrize(
    ("folds", "expected"), [(2, [0, 1]), ("all", [0, 1, 2]), ([2, 0], [0, 2]), ([1], [1])]
)
def test_kfold_folds_is_a_count_all_or_fold_numbers(
    make_config: MakeConfig, folds: object, expected: list[int]
) -> None:
    config = make_config(**{"train.kfold.n_splits": 3, "train.kfold.folds": folds})
    assert resolve_folds(config, None) == expected


@pytest.mark.parametrize("folds", [[], [3], [0, 0], [-1], 4, 0])
def test_kfold_folds_out_of_range_are_refused(make_config: MakeConfig, folds: object) -> None:
    with pytest.raises(ConfigError, match="folds"):
        make_config(**{"train.kfold.n_splits": 3, "train.kfold.folds": folds})


@pytest.mark.parametrize(
    ("trained", "written"), [([0], [0]), ([0, 2], [0, 2]), ([0, 1, 2], "all")]
)
def test_a_runs_config_names_the_folds_it_trained(
    make_config: MakeConfig, trained: list[int], written: object
) -> None:
    from hpo.train.runner import _with_folds

    config = make_config(**{"train.kfold.n_splits": 3})
    saved = _with_folds(config, trained, 3)
    assert saved.train.kfold.folds == written
    assert resolve_folds(saved, None) == trained
    assert saved.train.model_copy(update={"kfold": config.train.kfold}) == config.train
