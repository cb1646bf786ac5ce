"""``hpo studies report``: one self-contained HTML file, opened offline in headless Chromium."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest

from hpo.testing.pictures import PicturesStudy, keep_screenshot

CHROMIUM = Path("/usr/bin/chromium")
CliRun = Callable[..., tuple[int, str, str]]


@pytest.mark.slow
def test_report_holds_every_section(
    pictures_study: PicturesStudy, tmp_path: Path, run_cli: CliRun
) -> None:
    out = tmp_path / "report.html"
    code, stdout, err = run_cli(
        "studies", "report", pictures_study.name, "--storage", pictures_study.storage_url,
        "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert f"wrote {out}" in stdout
    text = out.read_text()
    study = optuna.load_study(study_name=pictures_study.name, storage=pictures_study.storage_url)
    best = study.best_trial
    for heading in (
        "Trials by state",
        "Optimization history",
        "Learning curves",
        "Parameter importances",
        "Parallel coordinates",
        f"Best trial {best.number}",
        "Exported config of the best trial",
    ):
        assert f"<h2>{heading}</h2>" in text
    assert "(pruned)" in text  # pruned trials are marked in the learning curves
    assert "<script src=" not in text  # nothing to fetch: plotly.js is embedded
    assert text.count('id="per-class-f1"') == 1
    assert f"trial: {best.number}" in text  # the exported config's provenance


def test_report_of_a_missing_study_is_one_line_exit_2(tmp_path: Path, run_cli: CliRun) -> None:
    code, _, err = run_cli(
        "studies", "report", "ghost", "--storage", f"sqlite:///{tmp_path / 'none.db'}"
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: no study named 'ghost'")


@pytest.mark.slow
@pytest.mark.browser
def test_report_opens_offline_with_its_plots_drawn(
    pictures_study: PicturesStudy,
    tmp_path: Path,
    run_cli: CliRun,
    pytestconfig: pytest.Config,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not CHROMIUM.is_file():
        reason = f"{CHROMIUM} not found: apt-get install chromium (see .ci/setup.sh)"
        if (
            os.environ.get("CI", "").lower() == "true"
            or os.environ.get("HPO_REQUIRE_BROWSER") == "1"
        ):
            pytest.fail(reason + " (required: CI=true or HPO_REQUIRE_BROWSER=1)")
        pytest.skip(reason)
    from playwright.sync_api import Route, sync_playwright

    out = tmp_path / "report.html"
    # In the study's folder with no --storage: the default studies/NAME.db, as a user runs it
    # (and the screenshot shows that, not a temporary path).
    monkeypatch.chdir(pictures_study.root)
    monkeypatch.delenv("HPO_STORAGE", raising=False)
    assert run_cli("studies", "report", pictures_study.name, "--out", out)[0] == 0
    requests: list[str] = []

    def block(route: Route) -> None:
        requests.append(route.request.url)
        route.abort()

    shot = tmp_path / "report.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu"],
            headless=True,
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("http*://**", block)  # offline: any network request fails
            page.goto(out.as_uri())
            # Four plotly figures drawn (an SVG each), and the embedded PNGs decoded.
            page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot .main-svg').length >= 4",
                timeout=30_000,
            )
            plots = page.eval_on_selector_all(".js-plotly-plot", "els => els.length")
            images = page.eval_on_selector_all(
                "img", "els => els.map(i => i.complete && i.naturalWidth > 0)"
            )
            page.screenshot(
                path=str(shot),
                full_page=True,
                clip={"x": 0, "y": 0, "width": 1280, "height": 1700},
            )
        finally:
            browser.close()
    assert requests == []
    assert plots == 4
    assert images and all(images)
    assert shot.stat().st_size > 20_000
    keep_screenshot(shot, pytestconfig.rootpath)
