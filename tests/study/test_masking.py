"""Credentials never reach output: every URL form, and every command that shows a storage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from hpo.config import train_config_from_dict
from hpo.exceptions import StorageError
from hpo.study import mask_url, normalize_url
from hpo.testing import PostgresServer

CliRun = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize(
    ("url", "secret", "kept"),
    [
        ("postgresql://u@db.example/hpo?password=hunter2", "hunter2", "password=***"),
        ("postgresql://u@h/db?sslmode=require&PassWord=hunter2", "hunter2", "sslmode=require"),
        ("postgresql://u@h/db?sslpassword=hunter2&x=1", "hunter2", "x=1"),
        ("postgresql://u@h/db?token=hunter2", "hunter2", "token=***"),
        ("postgresql://u:p@hunter2@h/db", "hunter2", "u:***@h/db"),
        ("postgresql://u:pass/hunter2@h/db", "hunter2", "u:***@h/db"),
        ("postgresql//u:hunter2@host/db", "hunter2", "host/db"),
        ("postgresql:u:hunter2@host/db", "hunter2", "postgresql"),
        ("sqlite:///studies/a@b.db", "\0", "sqlite:///studies/a@b.db"),
        ("justtext:hunter2", "hunter2", "<invalid storage URL: justtext:...>"),
        ("hunter2", "hunter2", "<invalid storage URL: no scheme>"),
    ],
)
def test_every_credential_form_is_masked(url: str, secret: str, kept: str) -> None:
    masked = mask_url(url)
    assert secret not in masked
    assert kept in masked


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql//u:hunter2@host/db", "not a valid SQLAlchemy URL"),
        ("postgresql://u:hunter2@host:port/db", "its port is not a number"),
        ("postgresql://u:p@hunter2@host/db", "write it as %40"),
    ],
)
def test_bad_urls_are_refused_without_their_password(url: str, expected: str) -> None:
    with pytest.raises(StorageError, match=expected) as excinfo:
        normalize_url(url)
    assert "hunter2" not in str(excinfo.value)


def test_bad_url_is_one_error_line_exit_2(run_cli: CliRun, tmp_path: Path) -> None:
    for url in ("postgresql//u:hunter2@host/db", "postgresql://u:hunter2@host:port/db"):
        code, out, err = run_cli("studies", "show", "x", "--storage", url)
        assert code == 2, err
        assert err.startswith("error: storage URL") and len(err.strip().splitlines()) == 1
        assert "hunter2" not in out + err


@pytest.mark.postgres
def test_query_password_is_masked_in_every_command(
    postgres_server: PostgresServer,
    run_cli: CliRun,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = postgres_server
    name = "t_masking"
    server.drop_database(name)
    server.create_database(name)
    url = (
        f"postgresql://{server.user}@{server.host}:{server.port}/{name}?password={server.password}"
    )
    study = optuna.create_study(study_name="m", storage=url, direction="maximize")
    config = train_config_from_dict(
        {"data": {"root": "data/x", "image_size": [32, 24]}, "train": {"epochs": 1}}, "t"
    )
    study.add_trial(
        create_trial(
            params={"train.optimizer.lr": 0.01},
            distributions={"train.optimizer.lr": FloatDistribution(1e-4, 1e-1, log=True)},
            value=0.5,
            user_attrs={"config": config.to_dict(), "fold_scores": [0.5]},
        )
    )
    monkeypatch.chdir(tmp_path)
    outputs = []
    for args in (("studies", "list"), ("studies", "show", "m")):
        code, out, err = run_cli(*args, "--storage", url)
        assert code == 0, err
        outputs.append(out + err)
    exported = tmp_path / "best.yaml"
    code, out, err = run_cli("export", "--study", "m", "--storage", url, "--out", exported)
    assert code == 0, err
    outputs.append(out + err)
    text = exported.read_text()
    assert "password=***" in yaml.safe_load(text)["provenance"]["storage"]
    outputs.append(text)
    # The run banner, through --dry-run (same masking; a real run prints the same line).
    (tmp_path / "studies").mkdir()
    study_file = Path(__file__).parents[2] / "studies" / "mask-clf.yaml"
    (tmp_path / "studies" / "m.yaml").write_text(study_file.read_text())
    demo = tmp_path / "data"
    from hpo.demo import make_demo_data

    make_demo_data(demo / "mask", profiles=6, seed=0)
    code, out, err = run_cli("run", "--study", "m", "--storage", url, "--dry-run")
    assert code == 0, err
    assert "password=***" in out
    outputs.append(out + err)
    for output in outputs:
        assert server.password not in output.replace("password=***", "")
    server.drop_database(name)
