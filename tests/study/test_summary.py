"""Study summaries: counts by state, best and top trials, and the studies of a folder."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from hpo.exceptions import StorageError
from hpo.study import DISCARDED_ATTR, summarize_studies
from hpo.study import _summary as summary
from hpo.testing import free_port


def _study(direction: str, *trials: tuple[TrialState, float | None, bool]) -> optuna.Study:
    """An in-memory study holding ``(state, value, discarded)`` trials, in that order."""
    study = optuna.create_study(direction=direction)
    for state, value, discarded in trials:
        attrs = {DISCARDED_ATTR: "another worker took the last slot"} if discarded else {}
        study.add_trial(create_trial(state=state, value=value, user_attrs=attrs))
    return study


def test_counts_leave_discarded_trials_out() -> None:
    study = _study(
        "maximize",
        (TrialState.COMPLETE, 0.5, False),
        (TrialState.PRUNED, None, False),
        (TrialState.FAIL, None, False),
        (TrialState.FAIL, None, True),
    )
    counts = summary.state_counts(study)
    assert set(counts) == {s.name.lower() for s in TrialState}
    assert (counts["complete"], counts["pruned"], counts["fail"]) == (1, 1, 1)
    assert summary.finished_count(study) == 2
    assert (
        len(summary.kept_trials(study)) == 3
        and len(summary.kept_trials(study, (TrialState.FAIL,))) == 1
    )
    assert summary.counts_text(study) == "1 complete, 1 pruned, 1 fail"
    assert summary.counts_text(optuna.create_study()) == "no trials"


@pytest.mark.parametrize(
    ("direction", "order"), [("maximize", [1, 2, 0]), ("minimize", [0, 1, 2])]
)
def test_top_trials_best_first_ties_to_the_lowest_number(direction: str, order: list[int]) -> None:
    study = _study(
        direction,
        (TrialState.COMPLETE, 0.2, False),
        (TrialState.COMPLETE, 0.7, False),
        (TrialState.COMPLETE, 0.7, False),
        (TrialState.COMPLETE, 0.9, True),
        (TrialState.PRUNED, None, False),
    )
    assert [t.number for t in summary.top_trials(study)] == order
    assert [t.number for t in summary.top_trials(study, 1)] == order[:1]
    best = summary.best_trial(study)
    assert best is not None and best.number == order[0]
    assert summary.best_trial(_study(direction, (TrialState.PRUNED, None, False))) is None


def test_summarize_studies_reads_the_folder_and_each_study_files_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    folder = tmp_path / "studies"
    folder.mkdir()
    study = optuna.create_study(study_name="alpha", storage=f"sqlite:///{folder / 'alpha.db'}")
    study.optimize(lambda trial: trial.suggest_float("x", -1.0, 1.0) ** 2, n_trials=2)
    # A database in the folder holding another study than its name says.
    optuna.create_study(study_name="gamma", storage=f"sqlite:///{folder / 'other.db'}")
    (folder / "alpha.yaml").write_text("{}\n")
    (folder / "beta.yaml").write_text("{}\n")  # never run: its default database does not exist
    down = f"postgresql://hpo:s3cret@127.0.0.1:{free_port()}/hpo"
    (folder / "remote.yaml").write_text(f"study: {{storage: '{down}'}}\n")
    (folder / "broken.yaml").write_text("study: [unclosed\n")  # one bad file, one row
    (folder / "bad name.yaml").write_text("{}\n")

    rows = summarize_studies(storage=None, studies_dir=folder)
    by_name = {row.name: row for row in rows}
    assert by_name["alpha"].counts is not None and by_name["alpha"].counts["complete"] == 2
    assert by_name["alpha"].n_trials == 2 and by_name["alpha"].best is not None
    assert by_name["gamma"].n_trials == 0 and by_name["gamma"].storage.endswith("other.db")
    # Not started: no counts, and no database created for them.
    assert by_name["beta"].counts is None and not (folder / "beta.db").exists()
    assert by_name["remote"].counts is None
    (unreachable,) = [row for row in rows if row.error is not None and row.name is None]
    assert unreachable.name is None and "s3cret" not in unreachable.storage + unreachable.error
    assert by_name["broken"].error is not None and "broken.yaml" in by_name["broken"].error
    assert by_name["bad name"].error is not None and "not allowed" in by_name["bad name"].error

    # One storage named: only its studies, and an error opening it is raised.
    only = summarize_studies(storage=f"sqlite:///{folder / 'other.db'}", studies_dir=folder)
    assert [row.name for row in only] == ["gamma"]
    with pytest.raises(StorageError, match="no study database"):
        summarize_studies(storage=f"sqlite:///{folder / 'missing.db'}", studies_dir=folder)
    assert not (folder / "missing.db").exists()
