"""Settings from the environment."""
from __future__ import annotations

from pathlib import Path

import pytest

from library import Settings


def test_defaults_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for key in ("SURGLENS_DATA_DIR", "SURGLENS_DB_URL", "SURGLENS_MAX_UPLOAD_MB", "SURGLENS_SAMPLE_FPS"):
        monkeypatch.delenv(key, raising=False)
    settings = Settings.from_env()
    assert settings.data_dir == tmp_path / "data"
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'library.db'}"
    assert {"mp4", "mov", "avi", "mkv", "webm", "ts", "m2ts", "mts", "mpg", "mpeg"} <= set(settings.video_extensions)


def test_environment_and_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path / "lib"))
    monkeypatch.setenv("SURGLENS_DB_URL", "postgresql+psycopg://u@localhost/surglens")
    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "512")
    monkeypatch.setenv("SURGLENS_SAMPLE_FPS", "2")
    settings = Settings.from_env()
    assert settings.data_dir == tmp_path / "lib" and settings.videos_dir == tmp_path / "lib" / "videos"
    assert settings.database_url == "postgresql+psycopg://u@localhost/surglens"
    assert settings.max_upload_bytes == 512 * 1024 * 1024 and settings.sample_fps == 2.0
    assert Settings.from_env(data_dir=Path("elsewhere"), db_url=None).data_dir == Path("elsewhere").resolve()


@pytest.mark.parametrize(
    ("env", "value", "match"),
    [("SURGLENS_MAX_UPLOAD_MB", "lots", "SURGLENS_MAX_UPLOAD_MB must be a number, got 'lots'"),
     ("SURGLENS_MAX_UPLOAD_MB", "0", "max_upload_mb must be positive"),
     ("SURGLENS_SAMPLE_FPS", "-1", "sample_fps must be positive")],
)
def test_bad_environment(monkeypatch, env, value, match):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValueError, match=match):
        Settings.from_env()
