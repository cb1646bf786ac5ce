"""Warm starts without training: study.enqueue entries checked and enqueued once, another
study's trials imported by fit, never counted toward the total nor chosen as the best."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo.exceptions import ConfigError, StorageError
from hpo.export import select_top, select_trial
from hpo.notes import warm_start_note
from hpo.report import build_report
from hpo.study import (
    IMPORTED_ATTR,
    apply_warm_start,
    best_trial,
    counts_text,
    enqueue_configs,
    finished_count,
    imported_count,
    is_imported,
    load_study_spec,
    mask_url,
    plan_warm_start,
    read_study_record,
    read_trial_record,
    run_worker,
    state_counts,
)
from hpo.testing.studies import tiny_study

_SPACE = {
    "train.optimizer.lr": {"float": [0.001, 0.1], "log": True},
    "train.optimizer.name": {"choice": ["sgd", "adam"]},
    "train.scheduler": {
        "choice": {
            "step": {"step_size": {"int": [1, 3]}, "gamma": {"float": [0.1, 0.9]}},
            "cosine": {},
        }
    },
}


def _write(tmp_path: Path, *, enqueue: Any = None, space: Any = None, name: str = "tiny") -> Path:
    study: dict[str, Any] = {
        "sampler": {"name": "random", "seed": 0},
        "pruner": {"name": "none"},
        "storage": f"sqlite:///{tmp_path / 'studies.db'}",
    }
    if enqueue is not None:
        study["enqueue"] = enqueue
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        tiny_study(tmp_path / "data", study=study, search_space=space or _SPACE, epochs=1)
    )
    return path


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"train.epochs": 3},
            r"study\.enqueue\[1\]: train\.epochs is a fixed setting \(1\), not searched; "
            r"enqueue takes searched keys: train\.optimizer\.lr, train\.optimizer\.name, "
            r"train\.scheduler$",
        ),
        ({"train.optimiser.lr": 0.01}, r"study\.enqueue\[1\]: unknown key 'train\.optimiser\.lr'"),
        (
            {"train.optimizer.lr": 0.5},
            r"study\.enqueue\[1\]: train\.optimizer\.lr: 0\.5 is outside "
            r"float \[0\.001, 0\.1\] log",
        ),
        (
            {"train.optimizer.name": "rmsprop"},
            r"train\.optimizer\.name: 'rmsprop' is not one of choice sgd \| adam",
        ),
        ({"train.scheduler": "linear"}, r"train\.scheduler: unknown branch 'linear'; branches: "),
        (
            {"train.scheduler": {"name": "step", "momentum": 0.5}},
            r"train\.scheduler: branch step has no parameter 'momentum'; searched parameters of "
            r"step: step_size, gamma",
        ),
        (
            {"train.scheduler": {"name": "step", "step_size": 4}},
            r"train\.scheduler\[step\]\.step_size: 4 is outside int \[1, 3\]",
        ),
        ({"train.scheduler": {"step_size": 2}}, r"train\.scheduler: a mapping needs the branch"),
        ("lr=0.01", r"study\.enqueue\[1\]: an entry maps searched keys to values"),
    ],
)
def test_every_enqueue_entry_is_checked_against_the_space_when_the_file_loads(
    tmp_path: Path, entry: Any, message: str
) -> None:
    path = _write(tmp_path, enqueue=[{"train.optimizer.lr": 0.01}, entry])
    with pytest.raises(ConfigError, match=message) as caught:
        load_study_spec(path)
    assert str(caught.value).startswith(f"{path}: study.enqueue[1]: ")
    assert "\n" not in str(caught.value)


def test_enqueue_entries_become_optuna_parameters(tmp_path: Path) -> None:
    entries = [
        {"train.optimizer.lr": 0.01, "train.scheduler": {"name": "step", "gamma": 0.5}},
        {"train.scheduler": "cosine", "train.optimizer.name": "adam"},
    ]
    spec = load_study_spec(_write(tmp_path, enqueue=entries))
    assert spec.enqueue_params() == [
        {
            "train.optimizer.lr": 0.01,
            "train.scheduler": "step",
            "train.scheduler[step].gamma": 0.5,
        },
        {"train.scheduler": "cosine", "train.optimizer.name": "adam"},
    ]


def _sampled(trial: optuna.Trial, spec_path: Path) -> float:
    load_study_spec(spec_path).space().sample(trial)
    return 0.5


def test_entries_are_enqueued_once_and_a_later_file_adds_only_its_new_ones(
    tmp_path: Path,
) -> None:
    first = [{"train.optimizer.lr": 0.01, "train.scheduler": {"name": "step", "step_size": 3}}]
    path = _write(tmp_path, enqueue=first)
    spec = load_study_spec(path)
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="tiny", storage=storage)
    assert len(enqueue_configs(study, spec)) == 1
    joined = optuna.load_study(study_name="tiny", storage=storage)  # a second worker joins
    assert enqueue_configs(joined, spec) == []
    run_worker(study, lambda t: _sampled(t, path), n_trials=2)
    trials = study.get_trials()
    assert trials[0].params["train.optimizer.lr"] == 0.01
    assert trials[0].params["train.scheduler"] == "step"
    assert trials[0].params["train.scheduler[step].step_size"] == 3
    assert 0.1 <= trials[0].params["train.scheduler[step].gamma"] <= 0.9  # left out: sampled
    assert len(trials) == 2  # the enqueued trial counted toward the total like any other

    # A later run whose file has one more entry enqueues that one only.
    more = _write(tmp_path, enqueue=[*first, {"train.optimizer.lr": 0.05}])
    assert enqueue_configs(study, load_study_spec(more)) == [{"train.optimizer.lr": 0.05}]
    assert len(read_study_record(study).enqueued) == 2
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1


# ---------------------------------------------------------------------------------------------
# --warm-start


_LR = FloatDistribution(1e-4, 1e-1, log=True)


def _source(storage: str, *, direction: str = "maximize") -> optuna.Study:
    """A finished study of another search space: lr from 1e-4, n_splits searched, a pruned
    trial with its curve, and one trial imported there from elsewhere."""
    study = optuna.create_study(study_name="src", storage=storage, direction=direction)
    name = CategoricalDistribution(["sgd", "adam"])
    splits = CategoricalDistribution([3, 5])

    def add(value: float | None, params: dict[str, Any], **kwargs: Any) -> None:
        dists = {
            "train.optimizer.lr": _LR,
            "train.optimizer.name": name,
            "train.kfold.n_splits": splits,
        }
        config = {
            "train": {
                "optimizer": {"name": "sgd", "lr": 0.01},
                "scheduler": {"name": "cosine"},
                "kfold": {"n_splits": 3},
            }
        }
        study.add_trial(
            create_trial(
                value=value,
                params=params,
                distributions={k: dists[k] for k in params},
                user_attrs={"config": config, "fold_scores": [value or 0.0]},
                **kwargs,
            )
        )

    add(0.99, {"train.optimizer.lr": 0.01, "train.optimizer.name": "sgd"})  # 0: fits
    add(0.98, {"train.optimizer.lr": 0.0002, "train.optimizer.name": "sgd"})  # 1: lr too low
    add(0.97, {"train.optimizer.lr": 0.0003, "train.optimizer.name": "adam"})  # 2: lr too low
    add(0.96, {"train.optimizer.lr": 0.02, "train.kfold.n_splits": 5})  # 3: n_splits 5
    add(0.95, {"train.optimizer.lr": 0.03, "train.kfold.n_splits": 3})  # 4: fixed 3 here: fits
    add(  # 5: pruned, with its curve
        0.4,
        {"train.optimizer.lr": 0.05, "train.optimizer.name": "adam"},
        state=TrialState.PRUNED,
        intermediate_values={0: 0.3, 1: 0.4},
    )
    study.add_trial(
        create_trial(
            value=0.5,
            params={"train.optimizer.lr": 0.01},
            distributions={"train.optimizer.lr": _LR},
            user_attrs={IMPORTED_ATTR: {"study": "older", "storage": "x", "trial": 0}},
        )
    )  # 6: imported there from "older"
    study.add_trial(create_trial(state=TrialState.FAIL))  # unfinished: not considered
    return study


def test_a_warm_start_imports_what_fits_and_names_the_rest_by_reason(
    tmp_path: Path, storage_url: str
) -> None:
    storage = storage_url
    _source(storage)
    spec = load_study_spec(_write(tmp_path))
    plan = plan_warm_start("src", storage, spec=spec, space=spec.space(), this_url=storage)
    study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    done = apply_warm_start(study, plan)
    assert done.imported == 3 and done.rejected_count == 4
    assert done.describe() == (
        f"warm start from study src ({mask_url(storage)}): 3 imported, 4 rejected: "
        "2 train.optimizer.lr outside float [0.001, 0.1] log (trials 1, 2), "
        "1 param train.kfold.n_splits not searched here (trial 3), "
        "1 imported into src from study older (trial 6)"
    )
    trials = study.get_trials()
    sources = [read_trial_record(t).imported for t in trials]
    assert [(s.study, s.trial) for s in sources if s is not None] == [
        ("src", 0),
        ("src", 4),
        ("src", 5),
    ]
    assert trials[0].value == 0.99 and trials[0].user_attrs["fold_scores"] == [0.99]
    assert (
        trials[0].datetime_complete
        == optuna.load_study(study_name="src", storage=storage).trials[0].datetime_complete
    )
    # What was not searched there is read from the trial's stored config: the scheduler, and
    # trial 4's optimizer; its n_splits is the value fixed here.
    assert trials[1].params == {
        "train.optimizer.lr": 0.03,
        "train.optimizer.name": "sgd",
        "train.scheduler": "cosine",
    }
    pruned = trials[2]
    assert pruned.state == TrialState.PRUNED and pruned.intermediate_values == {0: 0.3, 1: 0.4}
    assert pruned.distributions["train.optimizer.lr"] == FloatDistribution(0.001, 0.1, log=True)
    # A second run (or worker) with the same source skips.
    again = apply_warm_start(study, plan)
    assert again.already and again.imported == 0
    assert "already imported into this study; skipped" in again.describe()
    assert len(study.get_trials()) == 3


def test_imported_trials_count_toward_no_total_and_are_never_the_best(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    source = optuna.create_study(study_name="src", storage=storage, direction="maximize")
    for k in range(6):
        source.add_trial(
            create_trial(
                value=0.99,  # better than anything trained here
                params={"train.optimizer.lr": 0.01 + k / 1000},
                distributions={"train.optimizer.lr": _LR},
                user_attrs={"config": {"train": {"scheduler": {"name": "step"}}}},
            )
        )
    path = _write(tmp_path, space={"train.optimizer.lr": {"float": [0.001, 0.1], "log": True}})
    spec = load_study_spec(path)
    plan = plan_warm_start("src", storage, spec=spec, space=spec.space(), this_url=storage)
    study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    assert apply_warm_start(study, plan).imported == 6
    assert finished_count(study) == 0 and imported_count(study) == 6
    assert best_trial(study) is None  # nothing trained here yet: no best, no report's best
    assert "No complete trial yet" in build_report(study, storage_url=storage)
    result = run_worker(study, lambda t: _sampled(t, path), n_trials=3)
    assert len(result.ran) == 3 and finished_count(study) == 3
    assert len(study.get_trials()) == 9
    assert state_counts(study)["complete"] == 3
    assert counts_text(study) == "3 complete, 6 imported"
    best = best_trial(study)
    assert best is not None and best.value == 0.5 and not is_imported(best)
    assert select_trial(study).number == best.number
    assert all(not is_imported(t) for t in select_top(study, 5))
    with pytest.raises(StorageError, match=r"trial 0 .* was imported from study 'src' \(its "):
        select_trial(study, 0)
    note = warm_start_note(study)
    assert "6 trials imported from `src`" in note
    html = build_report(study, storage_url=storage)
    assert "imported (not trained here)" in html and "<b>6</b> trials from src" in html


def test_a_warm_start_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    _source(storage, direction="minimize")
    spec = load_study_spec(_write(tmp_path))
    with pytest.raises(ConfigError, match=r"--warm-start src: it was run to minimize its value"):
        plan_warm_start("src", storage, spec=spec, space=spec.space(), this_url=storage)
    with pytest.raises(StorageError, match=r"--warm-start nope: no study named 'nope' in .*; "):
        plan_warm_start("nope", storage, spec=spec, space=spec.space(), this_url=storage)
    with pytest.raises(ConfigError, match=r"--warm-start tiny: that is this study"):
        plan_warm_start("tiny", storage, spec=spec, space=spec.space(), this_url=storage)
    assert optuna.get_all_study_names(storage) == ["src"]
