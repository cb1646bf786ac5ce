"""Off a terminal (a log, a pipe) tables are plain lines: a header and tab-separated rows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

CliRun = Callable[..., tuple[int, str, str]]

_BOX = set("│┃━─┏┡└╭")


def test_score_prints_tab_separated_rows_in_a_log(tmp_path: Path, run_cli: CliRun) -> None:
    truth = tmp_path / "answers.csv"
    truth.write_text("ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,2\nd.jpg,2\n")
    pred = tmp_path / "p.csv"
    pred.write_text("ImageID,ans\na.jpg,0\nb.jpg,1\nc.jpg,1\nd.jpg,2\n")
    code, out, err = run_cli("score", "--pred", pred, "--truth", truth)
    assert code == 0, err
    assert not set(out) & _BOX
    assert out.splitlines() == [
        f"{pred} vs {truth}",
        "class\tname\tF1\tprecision\trecall\tsupport\tpredicted",
        "0\twear/male/<30\t1.0000\t1.0000\t1.0000\t1\t1",
        "1\twear/male/30-59\t0.6667\t0.5000\t1.0000\t1\t2",
        "2\twear/male/>=60\t0.6667\t1.0000\t0.5000\t2\t1",
        "macro-F1 0.7778  accuracy 0.7500  (4 rows, 3 classes)",
    ]


def test_studies_list_prints_tab_separated_rows_in_a_log(tmp_path: Path, run_cli: CliRun) -> None:
    import optuna

    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.db'}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    code, out, err = run_cli("studies", "list", "--storage", f"sqlite:///{tmp_path / 's.db'}")
    assert code == 0, err
    assert not set(out) & _BOX
    header, row = out.splitlines()
    assert header == "study\ttrials\tcomplete\tpruned\tfailed\tbest\tstorage"
    assert row.split("\t")[:6] == ["s", "2", "2", "0", "0", f"{study.best_value:.4f}"]


def test_data_check_cache_ls_and_models_print_plain_rows_in_a_log(
    demo_data: Path, run_cli: CliRun
) -> None:
    code, out, err = run_cli("data", "check", demo_data)
    assert code == 0, err
    assert not set(out) & _BOX
    lines = out.splitlines()
    assert lines[lines.index("images per class") + 1] == "class\tname\timages\tshare"
    code, out, err = run_cli("cache", "ls")
    assert code == 0, err
    assert not set(out) & _BOX
    code, out, err = run_cli("models")
    assert code == 0, err
    assert not set(out) & _BOX
    assert out.splitlines()[1] == "name\tparameters\tImageNet\tcached\tmin side"
    assert any(line.startswith("resnet18\t") for line in out.splitlines())
