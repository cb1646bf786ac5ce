"""The CLI's progress bar for the library's ``advance(done, total)`` callbacks."""

from __future__ import annotations

import pytest

from hpo.cli import _progress


def test_off_a_terminal_it_draws_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with _progress.progress_bar("decoding images") as advance:
        for done in range(1, 11):
            advance(done, 10)
    assert capsys.readouterr() == ("", "")


def test_on_a_terminal_it_draws_only_once_called(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    def terminal(*, stderr: bool = False) -> Console:
        return Console(stderr=stderr, force_terminal=True, width=80)

    monkeypatch.setattr(_progress, "make_console", terminal)
    with _progress.progress_bar("decoding images"):
        pass  # a warm cache: never called, no bar
    assert capsys.readouterr().err == ""
    with _progress.progress_bar("decoding images") as advance:
        for done in range(1, 11):
            advance(done, 10)
    assert "decoding images" in capsys.readouterr().err
    with _progress.progress_bar("decoding images", enabled=False) as advance:
        advance(1, 10)
    assert capsys.readouterr().err == ""
