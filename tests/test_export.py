"""hpo export: content, determinism and errors, on real Optuna studies in SQLite files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from hpo import __version__
from hpo.cli import main
from hpo.config import TrainConfig, load_train_config, train_config_from_dict
from hpo.export import export_trial
from hpo.study import DISCARDED_ATTR
from hpo.testing.studies import tiny_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTS: dict[str, Any] = {
    "train.optimizer.lr": FloatDistribution(1e-5, 1e-1, log=True),
    "train.scheduler": CategoricalDistribution(["cosine", "step"]),
}


def _config(lr: float, scheduler: str = "cosine") -> TrainConfig:
    raw = tiny_config(
        "data/demo",
        format="mask",
        batch_size=16,
        optimizer={"name": "adamw", "lr": lr},
        folds=1,
        scheduler={"name": scheduler},
    )
    return train_config_from_dict(raw, "test")


def _add(
    study: optuna.Study,
    value: float | None,
    *,
    lr: float = 1e-3,
    state: TrialState = TrialState.COMPLETE,
    attrs: dict[str, Any] | None = None,
    config: bool = True,
) -> None:
    user_attrs: dict[str, Any] = {"fold_scores": [value or 0.0, (value or 0.0) + 0.01]}
    if config:
        user_attrs["config"] = _config(lr).to_dict()
    user_attrs.update(attrs or {})
    study.add_trial(
        create_trial(
            params={"train.optimizer.lr": lr, "train.scheduler": "cosine"},
            distributions=DISTS,
            value=value if state == TrialState.COMPLETE else None,
            user_attrs=user_attrs,
            state=state,
        )
    )


@pytest.fixture
def storage(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'studies.db'}"


@pytest.fixture
def study(storage: str) -> optuna.Study:
    study = optuna.create_study(storage=storage, study_name="demo", direction="maximize")
    study.set_user_attr("hpo:data_fingerprint", "fp-1234")
    _add(study, 0.40, lr=1e-3)  # 0
    _add(study, 0.70, lr=3e-3)  # 1: best
    _add(study, None, state=TrialState.PRUNED)  # 2
    _add(study, None, state=TrialState.FAIL, attrs={"fail_reason": "TrainingError: loss NaN"})  # 3
    _add(study, 0.99, lr=5e-2, state=TrialState.FAIL, attrs={DISCARDED_ATTR: "over cap"})  # 4
    _add(study, 0.70, lr=7e-3)  # 5: ties with 1, later
    return study


def test_export_best_holds_trial_config_and_provenance(study: optuna.Study, storage: str) -> None:
    exported = export_trial("demo", storage)
    assert exported.trial_number == 1
    cfg = exported.config
    assert cfg.train.optimizer.params["lr"] == pytest.approx(3e-3)
    assert cfg.train.model.name == "small_cnn"
    assert cfg.data.image_size == (32, 24)
    prov = cfg.provenance
    assert prov is not None
    assert prov["study"] == "demo"
    assert prov["trial"] == 1
    assert prov["value"] == pytest.approx(0.70)
    assert prov["fold_scores"] == pytest.approx([0.70, 0.71])
    assert prov["params"] == {
        "train.optimizer.lr": pytest.approx(3e-3),
        "train.scheduler": "cosine",
    }
    assert prov["data_fingerprint"] == "fp-1234"
    assert prov["hpo_version"] == __version__
    assert prov["direction"] == "maximize"


def test_export_minimize_picks_lowest(storage: str) -> None:
    study = optuna.create_study(storage=storage, study_name="low", direction="minimize")
    _add(study, 0.5, lr=1e-3)
    _add(study, 0.2, lr=2e-3)
    _add(study, 0.9, lr=3e-3)
    assert export_trial("low", storage).trial_number == 1


def test_cli_export_writes_config_hpo_train_reads(
    study: optuna.Study, storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    main(["export", "--study", "demo", "--storage", storage])
    path = tmp_path / "demo-trial1.yaml"
    assert path.is_file()
    loaded = load_train_config(path)
    assert loaded == export_trial("demo", storage).config
    raw = yaml.safe_load(path.read_text())
    assert list(raw) == ["data", "train", "provenance"]


def test_reexport_is_byte_identical(study: optuna.Study, storage: str, tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    main(["export", "--study", "demo", "--storage", storage, "--out", str(a)])
    _add(study, 0.10, lr=9e-3)  # a new, worse trial does not change the export of trial 1
    main(["export", "--study", "demo", "--storage", storage, "--trial", "1", "--out", str(b)])
    assert a.read_bytes() == b.read_bytes()


def test_named_trial_and_absent_fingerprint(storage: str, tmp_path: Path) -> None:
    study = optuna.create_study(storage=storage, study_name="old")  # no hpo:* study attrs
    _add(study, 0.3, lr=1e-3)
    _add(study, 0.6, lr=2e-3)
    out = tmp_path / "t0.yaml"
    main(["export", "--study", "old", "--storage", storage, "--trial", "0", "--out", str(out)])
    prov = load_train_config(out).provenance
    assert prov is not None
    assert prov["trial"] == 0
    assert prov["data_fingerprint"] is None


def test_storage_password_is_masked(study: optuna.Study, storage: str) -> None:
    from hpo.export import exported_config

    trial = study.trials[1]
    cfg = exported_config(study, trial, "postgresql+psycopg://hpo:s3cret@db.example/hpo")
    assert cfg.provenance is not None
    assert "s3cret" not in cfg.provenance["storage"]
    assert "***" in cfg.provenance["storage"]


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ")
    assert len(err.splitlines()) == 1
    return err


@pytest.mark.parametrize(
    ("trial", "expected"),
    [
        ("2", "trial 2 of study 'demo' is PRUNED, not COMPLETE"),
        ("3", "is FAIL, not COMPLETE: TrainingError: loss NaN"),
        ("4", "trial 4 of study 'demo' was discarded"),
        ("17", "has no trial 17 (trial numbers: 0..5)"),
    ],
)
def test_export_refuses_unexportable_trial(
    study: optuna.Study,
    storage: str,
    capsys: pytest.CaptureFixture[str],
    trial: str,
    expected: str,
) -> None:
    err = _error(capsys, ["export", "--study", "demo", "--storage", storage, "--trial", trial])
    assert expected in err


def test_export_refuses_unknown_study(
    study: optuna.Study, storage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _error(capsys, ["export", "--study", "nope", "--storage", storage])
    assert "no study named 'nope'" in err
    assert "demo" in err  # lists the studies that exist


def test_export_missing_sqlite_file_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "missing.db"
    err = _error(capsys, ["export", "--study", "x", "--storage", f"sqlite:///{db}"])
    assert "does not exist" in err
    assert not db.exists()


def test_export_refuses_study_without_complete_trial(
    storage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study = optuna.create_study(storage=storage, study_name="empty")
    _add(study, None, state=TrialState.PRUNED)
    _add(study, None, state=TrialState.FAIL)
    err = _error(capsys, ["export", "--study", "empty", "--storage", storage])
    assert "has no complete trial to export (1 pruned, 1 fail)" in err


def test_export_refuses_trial_without_config(
    storage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    study = optuna.create_study(storage=storage, study_name="foreign", direction="maximize")
    _add(study, 0.5, config=False)
    err = _error(capsys, ["export", "--study", "foreign", "--storage", storage])
    assert "has no stored training config" in err


def test_export_uses_hpo_storage_env(
    study: optuna.Study, storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_STORAGE", storage)
    out = tmp_path / "env.yaml"
    main(["export", "--study", "demo", "--out", str(out)])
    assert load_train_config(out).provenance["trial"] == 1  # type: ignore[index]


def test_export_on_each_storage(storage_url: str, tmp_path: Path) -> None:
    """SQLite and PostgreSQL: same trial chosen, password never written, re-export identical."""
    study = optuna.create_study(storage=storage_url, study_name="s", direction="maximize")
    _add(study, 0.2, lr=1e-3)
    _add(study, 0.8, lr=2e-3)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    main(["export", "--study", "s", "--storage", storage_url, "--out", str(a)])
    main(["export", "--study", "s", "--storage", storage_url, "--out", str(b)])
    assert a.read_bytes() == b.read_bytes()
    text = a.read_text()
    assert "provenance:\n  study: s\n  trial: 1\n" in text
    assert "secret" not in text


def test_export_top_writes_the_best_distinct_trials(
    study: optuna.Study, storage: str, tmp_path: Path, run_cli: Any
) -> None:
    _add(study, 0.65, lr=3e-3)  # 6: trial 1's parameters again (a retried trial): skipped
    out = tmp_path / "top"
    code, stdout, err = run_cli("export", "--study", "demo", "--storage", storage, "--top", "3",
                                "--out", out)  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "demo-trial0.yaml",
        "demo-trial1.yaml",
        "demo-trial5.yaml",
    ]
    # Best first (ties to the lower number); each file is what the single export writes.
    assert [line.split(":")[0] for line in stdout.splitlines()] == [
        f"wrote {out / f'demo-trial{n}.yaml'}" for n in (1, 5, 0)
    ]
    single = tmp_path / "one.yaml"
    main(["export", "--study", "demo", "--storage", storage, "--trial", "5", "--out", str(single)])
    assert (out / "demo-trial5.yaml").read_bytes() == single.read_bytes()
    code, stdout, _ = run_cli("export", "--study", "demo", "--storage", storage, "--top", "9",
                              "--out", tmp_path / "all")  # fmt: skip
    assert code == 0
    assert "the study has 3 distinct complete trial(s), not 9" in stdout


def test_export_top_refusals(
    study: optuna.Study, storage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["export", "--study", "demo", "--storage", storage]
    assert "--top and --trial exclude each other" in _error(
        capsys, [*base, "--top", "2", "--trial", "1"]
    )
    (tmp_path / "f").write_text("")
    assert "with --top, a folder" in _error(
        capsys, [*base, "--top", "2", "--out", str(tmp_path / "f")]
    )
    empty = optuna.create_study(storage=storage, study_name="none")
    _add(empty, None, state=TrialState.PRUNED)
    err = _error(capsys, ["export", "--study", "none", "--storage", storage, "--top", "2"])
    assert "has no complete trial to export" in err
