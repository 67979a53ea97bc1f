"""``python -m tools.emulators setup``: what it does when LocalStack cannot run on this machine."""

from __future__ import annotations

import pytest

import tools.emulators as emulators


@pytest.fixture
def no_python313(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulators, "find_python313", lambda: None)
    monkeypatch.setattr(emulators, "localstack_installed", lambda venv: False)


def test_setup_fails_with_the_reason_when_python_313_is_missing(
    no_python313: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert emulators.main(["setup"]) == 2
    assert "LocalStack needs Python 3.13" in capsys.readouterr().err


def test_setup_if_available_lets_make_test_go_on_and_says_the_tier_is_skipped(
    no_python313: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert emulators.main(["setup", "--if-available"]) == 0
    assert "integration tier will be skipped" in capsys.readouterr().err
