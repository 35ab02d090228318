"""Video I/O: probe, streaming frame reader, H.264 writer, clip cutting and frame-quality measures."""
from video.clip import cut_clip
from video.errors import (
    CorruptVideoError,
    EmptyFileError,
    NotAVideoError,
    NoVideoStreamError,
    TruncatedVideoError,
    UnsupportedCodecError,
    VideoError,
    VideoNotFoundError,
)
from video.probe import VideoInfo, file_sha256, probe
from video.quality import Finding, FrameQuality, QualityThresholds, measure_quality, quality_findings
from video.reader import Frame, FrameReader
from video.writer import VideoWriter

__all__ = [
    "CorruptVideoError",
    "EmptyFileError",
    "Finding",
    "Frame",
    "FrameQuality",
    "FrameReader",
    "NoVideoStreamError",
    "NotAVideoError",
    "QualityThresholds",
    "TruncatedVideoError",
    "UnsupportedCodecError",
    "VideoError",
    "VideoInfo",
    "VideoNotFoundError",
    "VideoWriter",
    "cut_clip",
    "file_sha256",
    "measure_quality",
    "probe",
    "quality_findings",
]
