"""The password gate (SURGLENS_PASSWORD): no page renders before the right password."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import MAIN, texts


def _app() -> AppTest:
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def _asks_password(at: AppTest) -> bool:
    return any(t.label == "Password" for t in at.text_input)


def test_no_password_set_opens_the_library(library, monkeypatch):
    monkeypatch.delenv("SURGLENS_PASSWORD", raising=False)
    at = _app()
    assert not _asks_password(at) and "Case library" in texts(at)


def test_pages_render_only_after_the_right_password(library, monkeypatch):
    monkeypatch.setenv("SURGLENS_PASSWORD", "open sesame")
    at = _app()
    shown = texts(at)
    assert _asks_password(at) and len(at.text_input) == 1 and "Case library" not in shown and "Sign in" in shown
    at.text_input[0].input("wrong")
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == ["Wrong password."] and "Case library" not in texts(at)
    at.text_input[0].input("open sesame")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error and not _asks_password(at) and "Case library" in texts(at)
    at.run()  # the session stays signed in
    assert "Case library" in texts(at) and not _asks_password(at)


@pytest.mark.parametrize("given", ["", "open sesam", "OPEN SESAME", "open sesame "])
def test_near_misses_are_refused(library, monkeypatch, given):
    monkeypatch.setenv("SURGLENS_PASSWORD", "open sesame")
    at = _app()
    at.text_input[0].input(given)
    at.button[0].click()
    at.run()
    assert [e.value for e in at.error] == ["Wrong password."]
