"""``hpo dashboard``: the real command in a real browser, and its errors."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from hpo.cli import main
from hpo.dashboard import Dashboard, open_dashboard
from hpo.testing.pictures import PicturesStudy, keep_screenshot
from hpo.testing.studies import tiny_study

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STUDY = "mask-demo"


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    """A folder with ``studies/mask-demo.db`` holding six finished trials (real Optuna)."""
    (tmp_path / "studies").mkdir()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=STUDY,
        storage=f"sqlite:///{tmp_path / 'studies' / f'{STUDY}.db'}",
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    study.optimize(
        lambda t: (
            t.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
            * t.suggest_int("batch_size", 16, 128)
        ),
        n_trials=6,
    )
    return tmp_path


def _study_url(study_dir: Path) -> str:
    return f"sqlite:///{study_dir / 'studies' / f'{STUDY}.db'}"


@pytest.fixture
def dashboard_process(study_dir: Path) -> Iterator[tuple[str, str]]:
    """``hpo dashboard --study mask-demo --port 0`` as a subprocess: (page URL, its stdout).

    Run in ``study_dir`` with no --storage, so the default ``studies/NAME.db`` is found, and
    with no --host, so the default address is what the URL shows.
    """
    out = study_dir / "dashboard.out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HPO_STORAGE", None)
    with out.open("w") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hpo", "dashboard", "--study", STUDY, "--port", "0"],
            cwd=study_dir,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
    try:
        url = _wait_for_url(proc, out)
        _wait_for_http(url)
        yield url, out.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_for_url(proc: subprocess.Popen[bytes], out: Path, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = out.read_text()
        match = re.search(r"http://\S+/dashboard/studies/\d+", text)
        # The header ends with the Ctrl-C line: wait for all of it, not just the URL.
        if match and "Press Ctrl-C to stop." in text:
            return match.group(0)
        if proc.poll() is not None:
            pytest.fail(f"hpo dashboard exited with {proc.returncode}:\n{out.read_text()}")
        time.sleep(0.1)
    pytest.fail(f"hpo dashboard printed no URL within {timeout} s:\n{out.read_text()}")


def _wait_for_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)


def _require_chromium() -> None:
    if CHROMIUM.is_file():
        return
    reason = f"{CHROMIUM} not found: apt-get install chromium (see .ci/setup.sh)"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("HPO_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " (required: CI=true or HPO_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.mark.browser
def test_dashboard_shows_the_study_in_a_browser(
    dashboard_process: tuple[str, str],
    study_dir: Path,
    tmp_path: Path,
    pytestconfig: pytest.Config,
) -> None:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    url, stdout = dashboard_process
    assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
    assert f"Storage: sqlite:///studies/{STUDY}.db" in stdout

    study = optuna.load_study(study_name=STUDY, storage=_study_url(study_dir))
    best = study.best_trial
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            page.goto(url)
            page.get_by_text(f"{STUDY} (id=").first.wait_for(timeout=30_000)
            page.get_by_text(f"Best Trial (number={best.number})").wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
            body = page.inner_text("body")
        finally:
            context.close()

    assert f"{STUDY} (id=" in body
    # The best trial's parameters, as the dashboard read them from the storage.
    assert f"learning_rate: {best.params['learning_rate']}" in body
    assert f"batch_size: {best.params['batch_size']}" in body
    # The history plot has one x tick per trial number, 0..5.
    assert re.search(r"\b0\n1\n2\n3\n4\n5\n", body)
    assert (tmp_path / "dashboard.png").stat().st_size > 20_000
    keep_screenshot(tmp_path / "dashboard.png", pytestconfig.rootpath)


def test_missing_study_is_one_line_exit_2(
    study_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(study_dir)
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--study", "no-such-study", "--storage", _study_url(study_dir)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: no study named 'no-such-study'")
    assert STUDY in err  # names the studies that do exist


def test_missing_database_is_one_line_exit_2_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["dashboard", "--study", "ghost"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no study database at studies/ghost.db" in err
    assert not (tmp_path / "studies" / "ghost.db").exists()


def test_cli_defaults_to_loopback_and_prints_the_urls(
    study_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bound: list[Dashboard] = []

    def stop_at_once(self: Dashboard) -> None:
        bound.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(Dashboard, "serve_forever", stop_at_once)
    monkeypatch.chdir(study_dir)
    main(["dashboard", "--study", STUDY, "--port", "0"])

    (board,) = bound
    assert board.host == "127.0.0.1"
    out = capsys.readouterr().out
    assert (
        f"Dashboard of study '{STUDY}': http://127.0.0.1:{board.port}/dashboard/studies/1" in out
    )
    assert "Storage: sqlite:///" in out


def test_port_in_use_is_one_line_exit_2(
    study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exit_info:
            main(["dashboard", "--study", STUDY, "--storage", _study_url(study_dir),
                  "--port", str(port)])  # fmt: skip
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err


def test_trial_artifacts_are_served(study_dir: Path) -> None:
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    artifacts = study_dir / "artifacts"
    artifacts.mkdir()
    storage = optuna.storages.RDBStorage(_study_url(study_dir))
    study = optuna.load_study(study_name=STUDY, storage=storage)
    trial = study.ask()  # artifacts are uploaded while a trial runs
    confusion = study_dir / "confusion.csv"
    confusion.write_text("true,pred,count\n0,0,12\n0,1,3\n")
    artifact_id = upload_artifact(
        study_or_trial=trial,
        file_path=str(confusion),
        artifact_store=FileSystemArtifactStore(artifacts),
        storage=storage,
    )
    study.tell(trial, 0.0)

    board = open_dashboard(STUDY, _study_url(study_dir), port=0, artifact_dir=artifacts)
    thread = threading.Thread(target=board.serve_forever, daemon=True)
    thread.start()
    try:
        trial_id = storage.get_trial_id_from_study_id_trial_number(board.study_id, trial.number)
        url = f"http://127.0.0.1:{board.port}/artifacts/{board.study_id}/{trial_id}/"
        with urllib.request.urlopen(url + artifact_id, timeout=10) as response:
            assert response.read() == confusion.read_bytes()
    finally:
        board.server.shutdown()
        board.close()


# ---------------------------------------------------------------------------------------------
# The trial view of a real tiny study: artifacts served from the default store, and notes.


@pytest.mark.slow
@pytest.mark.browser
def test_trial_view_shows_the_confusion_matrix_and_the_note(
    pictures_study: PicturesStudy, tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    _require_chromium()
    from optuna.artifacts import get_all_artifact_meta
    from playwright.sync_api import sync_playwright

    study = optuna.load_study(study_name=pictures_study.name, storage=pictures_study.storage_url)
    trial = study.best_trial
    metas = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
    image_id = metas["confusion_matrix.png"].artifact_id

    out = tmp_path / "dashboard.out"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HPO_STORAGE", None)
    with out.open("w") as stdout:
        # No --storage, no --artifacts: both come from the study's defaults.
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hpo",
                "dashboard",
                "--study",
                pictures_study.name,
                "--port",
                "0",
            ],
            cwd=pictures_study.root,
            env=env,
            stdout=stdout,
            stderr=subprocess.STDOUT,
        )
    shot = tmp_path / "dashboard-trial.png"
    try:
        url = _wait_for_url(proc, out)
        _wait_for_http(url)
        assert f"Artifacts: studies/{pictures_study.name}.artifacts" in out.read_text()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(f"{url}/trials?numbers={trial.number}")
                note = page.get_by_text(f"Trial {trial.number}: complete, macro-F1")
                note.first.wait_for(timeout=30_000)
                image = page.locator(f'img[src$="{image_id}"]')
                image.wait_for(timeout=30_000)
                image.scroll_into_view_if_needed()
                # Loaded and decoded: a broken image has naturalWidth 0.
                page.wait_for_function(
                    "id => [...document.images].some("
                    "i => i.src.endsWith(id) && i.complete && i.naturalWidth > 0)",
                    arg=image_id,
                    timeout=30_000,
                )
                width = image.evaluate("i => i.naturalWidth")
                body = page.inner_text("body")
                top = note.first.bounding_box()
                bottom = image.bounding_box()
                assert top is not None and bottom is not None
                page.evaluate("window.scrollTo(0, 0)")
                page.set_viewport_size({"width": 1280, "height": 2400})
                top = note.first.bounding_box()
                bottom = image.bounding_box()
                assert top is not None and bottom is not None
                y = max(0.0, top["y"] - 60)
                page.screenshot(
                    path=str(shot),
                    clip={"x": 0, "y": y, "width": 1280,
                          "height": bottom["y"] + bottom["height"] + 80 - y},
                )  # fmt: skip
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    assert width > 400
    assert "per-factor F1: mask" in body
    assert "confusion_matrix.png" in body and "per_class_f1.csv" in body
    assert shot.stat().st_size > 20_000
    keep_screenshot(shot, pytestconfig.rootpath)


# ---------------------------------------------------------------------------------------------
# The dashboard on a study that workers are writing to: no extra flags, no locked database.

_LIVE_STUDY = {
    "sampler": {"name": "random", "seed": 3},
    "pruner": {"name": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
}
_LIVE_SEARCH = {"train.optimizer.lr": {"choice": [0.05, 0.02, 1.0e-6]}}


def _wait_for_study_row(db: Path, name: str, procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait (read-only, creating nothing) until a worker has created the study in ``db``."""
    import sqlite3

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if db.is_file():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    rows = conn.execute(
                        "SELECT 1 FROM studies WHERE study_name = ?", (name,)
                    ).fetchall()
                if rows:
                    return
            except sqlite3.Error:
                pass  # the tables are not there yet
        assert all(p.poll() is None for p in procs), "a worker exited before creating the study"
        time.sleep(0.2)
    pytest.fail(f"no study {name!r} in {db} within 120 s")


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, url
        return response.read()


@pytest.mark.slow
def test_dashboard_serves_artifacts_while_two_workers_write_the_sqlite_study(
    tmp_path: Path, demo_data: Path
) -> None:
    import json

    from hpo.study import FINISHED

    n_trials = 6
    study = PicturesStudy(tmp_path, name="live")
    study.studies_dir.mkdir()
    study.study_file.write_text(
        tiny_study(demo_data, study=_LIVE_STUDY, search_space=_LIVE_SEARCH, folds=2)
    )
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    env.pop("HPO_STORAGE", None)
    hpo = [sys.executable, "-m", "hpo"]
    run = [*hpo, "run", "--study", study.name, "--n-trials", str(n_trials), "--quiet"]
    logs = [tmp_path / f"worker{i}.out" for i in range(2)] + [tmp_path / "dashboard.out"]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for log in logs[:2]:
            with log.open("w") as out:
                procs.append(subprocess.Popen(
                    run, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT
                ))  # fmt: skip
        workers = list(procs)
        _wait_for_study_row(study.studies_dir / f"{study.name}.db", study.name, workers)
        # No --storage, no --artifacts: studies/live.db and studies/live.artifacts, the latter
        # not there yet when the dashboard starts.
        with logs[2].open("w") as out:
            dashboard = subprocess.Popen(
                [*hpo, "dashboard", "--study", study.name, "--port", "0"],
                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        procs.append(dashboard)
        page = _wait_for_url(dashboard, logs[2])
        assert f"Artifacts: studies/{study.name}.artifacts" in logs[2].read_text()
        base, study_id = page.split("/dashboard/studies/")
        api = f"{base}/api/studies/{study_id}?after=0"

        # Poll as the page does, for as long as a worker runs (bounded in time and count).
        served: dict[str, bytes] = {}
        polls_while_running = 0
        polls_mid_study = 0  # answered while the study had unfinished trials
        deadline = time.monotonic() + 280
        for _ in range(5000):
            running = any(w.poll() is None for w in workers)
            detail = json.loads(_get(api))
            polls_while_running += running
            done = [t for t in detail["trials"] if t["state"] in ("Complete", "Pruned")]
            polls_mid_study += running and len(done) < n_trials
            for trial in detail["trials"]:
                for meta in trial["artifacts"]:
                    artifact_id = meta["artifact_id"]
                    if artifact_id not in served:
                        url = f"{base}/artifacts/{study_id}/{trial['trial_id']}/{artifact_id}"
                        served[artifact_id] = _get(url)
            if not running or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        codes = [w.wait(30) for w in workers]
        final = json.loads(_get(api))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
    outputs = [log.read_text() for log in logs]
    assert codes == [0, 0], outputs
    for output in outputs:
        assert "database is locked" not in output
        assert "Traceback" not in output
    # The polls overlapped the run, and saw every finished trial at the end.
    assert polls_while_running > 0 and polls_mid_study > 0
    finished = optuna.load_study(study_name=study.name, storage=study.storage_url).get_trials(
        states=FINISHED
    )
    assert len(finished) == n_trials
    assert len(final["trials"]) == n_trials
    # Every trial's artifacts, from the store the dashboard found by itself.
    assert all(trial["artifacts"] for trial in final["trials"])
    assert served and all(served.values())
    assert any(content.startswith(b"\x89PNG") for content in served.values())


def test_dashboard_started_with_sigint_ignored_stops_on_sigint(study_dir: Path) -> None:
    """`hpo dashboard ... &` from a script inherits SIGINT ignored; Ctrl-C / kill -INT stops it."""
    import signal

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hpo",
            "dashboard",
            "--study",
            STUDY,
            "--port",
            "0",
            "--storage",
            _study_url(study_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # What a non-interactive shell does to a background job.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Press Ctrl-C"):
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in err
