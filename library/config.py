"""Where the case library lives and its limits, read from the environment in one place."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

# Extensions the upload dialog names. They are only a hint: any file whose content FFmpeg reads as a
# video in a plain video container is accepted, whatever it is called (video.probe.VIDEO_DEMUXERS).
VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "avi", "mkv", "webm", "ts", "m2ts", "mts", "mpg", "mpeg", "vob", "wmv", "mxf")


@dataclass(frozen=True)
class Settings:
    """Case library settings.

    `data_dir` holds `library.db` (SQLite default), `videos/<sha256><ext>`, `cases/<case_id>/`,
    `tmp/` (uploads being checked) and `logs/`. `db_url` takes any SQLAlchemy URL; None means
    SQLite in `data_dir`.
    """

    data_dir: Path = field(default_factory=lambda: Path("data"))
    db_url: str | None = None
    max_upload_mb: float = 2048.0  # keep in step with server.maxUploadSize in .streamlit/config.toml
    video_extensions: tuple[str, ...] = VIDEO_EXTENSIONS
    sample_fps: float = 1.0  # default analysis sampling rate for new cases
    heartbeat_s: float = 1.0  # how often a worker writes its heartbeat and the job's progress
    stale_after_s: float = 60.0  # a running job without a heartbeat this long is taken back
    max_attempts: int = 3  # a job interrupted this many times is marked failed, not retried
    # A job running longer than job_base_s + job_per_video_s x the video's duration fails (a hung stage).
    job_base_s: float = 600.0
    job_per_video_s: float = 3.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser().resolve())
        exts = tuple(e.lower().lstrip(".") for e in self.video_extensions)
        object.__setattr__(self, "video_extensions", exts)
        if self.max_upload_mb <= 0:
            raise ValueError(f"max_upload_mb must be positive, got {self.max_upload_mb!r}")
        if self.sample_fps <= 0:
            raise ValueError(f"sample_fps must be positive, got {self.sample_fps!r}")

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Settings from SURGLENS_DATA_DIR, SURGLENS_DB_URL, SURGLENS_MAX_UPLOAD_MB, SURGLENS_SAMPLE_FPS.

        Keyword overrides win over the environment; a relative data_dir is relative to the CWD.
        """
        env: dict[str, object] = {}
        if value := os.environ.get("SURGLENS_DATA_DIR"):
            env["data_dir"] = Path(value)
        if value := os.environ.get("SURGLENS_DB_URL"):
            env["db_url"] = value
        for name, key in (("max_upload_mb", "SURGLENS_MAX_UPLOAD_MB"), ("sample_fps", "SURGLENS_SAMPLE_FPS")):
            if value := os.environ.get(key):
                try:
                    env[name] = float(value)
                except ValueError:
                    raise ValueError(f"{key} must be a number, got {value!r}") from None
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**env)

    @property
    def database_url(self) -> str:
        return self.db_url or f"sqlite:///{self.data_dir / 'library.db'}"

    @property
    def safe_database_url(self) -> str:
        """`database_url` with its password masked, for logs and messages."""
        return mask_password(self.database_url)

    def job_time_limit_s(self, duration_s: float | None) -> float:
        """Seconds one analysis may run: `job_base_s` + `job_per_video_s` x the video's duration."""
        return self.job_base_s + self.job_per_video_s * max(float(duration_s or 0.0), 0.0)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def videos_dir(self) -> Path:
        return self.data_dir / "videos"

    @property
    def cases_dir(self) -> Path:
        return self.data_dir / "cases"

    @property
    def tmp_dir(self) -> Path:
        return self.data_dir / "tmp"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]*)@")


def mask_password(text: str) -> str:
    """`text` with the password of every URL in it (scheme://user:password@host) replaced by ***."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", str(text))
