"""Shared fixtures: where the real data is, and skipping cleanly when a clone does not have it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SURGLENS_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, skipping the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (needs ../shared/data beside the repository)")
    return path


@pytest.fixture(scope="session")
def cholec_clips() -> list[Path]:
    """The real Cholec80 clips (854x480, 25 fps, 800 frames each)."""
    return sorted(shared_path("cholec-clips").glob("*.mp4"))


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")
