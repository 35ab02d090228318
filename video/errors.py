"""Typed errors for files that cannot be read as video; every message quotes the path."""
from __future__ import annotations

from pathlib import Path


class VideoError(ValueError):
    """A file that cannot be read as a video. `path` is the offending file."""

    def __init__(self, path: str | Path, message: str) -> None:
        super().__init__(message)
        self.path = str(path)


class VideoNotFoundError(VideoError):
    """The path does not exist (or is not a file)."""


class EmptyFileError(VideoError):
    """The file has zero bytes."""


class NotAVideoError(VideoError):
    """The bytes are not a video container (text, an image, an unknown format)."""


class TruncatedVideoError(VideoError):
    """The container is cut short, e.g. an mp4 whose moov atom was never written."""


class NoVideoStreamError(VideoError):
    """A valid container without any video stream (e.g. audio only)."""


class UnsupportedCodecError(VideoError):
    """The video stream uses a codec this FFmpeg build cannot decode."""


class CorruptVideoError(VideoError):
    """Undecodable data in the stream; `last_good_timestamp_s` is the last frame decoded before it."""

    def __init__(self, path: str | Path, message: str, last_good_timestamp_s: float | None) -> None:
        super().__init__(path, message)
        self.last_good_timestamp_s = last_good_timestamp_s
