"""`VideoWriter`: browser-playable H.264 mp4 (libx264, yuv420p, moov atom first) via PyAV, written atomically."""
from __future__ import annotations

import contextlib
import math
import os
import uuid
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Iterator

import av
import numpy as np


def partial_path(path: Path) -> Path:
    """A fresh hidden temporary name beside `path` (same file system, so a rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.partial")


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path` that replaces it on success and is deleted on error."""
    tmp = partial_path(Path(path))
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def open_mp4_output(path: Path) -> av.container.OutputContainer:
    """An mp4 muxer that moves the moov atom before the media data, so browsers start playing at once."""
    return av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})


class VideoWriter:
    """Write RGB frames (HxWx3 uint8, size (w, h)) to an H.264 mp4 at `fps`; use as a context manager.

    Odd sizes are cropped by one pixel to the even size yuv420p needs (`.size` is the written size).
    The file appears at `path` only when the writer closes without error.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int], crf: int = 23, preset: str = "veryfast") -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float, Fraction)) or not math.isfinite(fps) or fps <= 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if len(size) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 2 for v in size):
            raise ValueError(f"size must be (width, height) with integers >= 2, got {size!r}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be within 0..51 (lower is better quality), got {crf!r}")
        self.path = Path(path)
        self.input_size = (int(size[0]), int(size[1]))
        self.size = (self.input_size[0] // 2 * 2, self.input_size[1] // 2 * 2)
        self.frames_written = 0
        self._tmp = partial_path(self.path)
        try:
            self._container = open_mp4_output(self._tmp)
            rate = Fraction(fps).limit_denominator(1001)
            self._stream = self._container.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
            self._stream.width, self._stream.height = self.size
            self._stream.pix_fmt = "yuv420p"
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        self._closed = False

    def write(self, rgb: np.ndarray) -> None:
        """Encode one frame."""
        w, h = self.input_size
        if not isinstance(rgb, np.ndarray) or rgb.shape != (h, w, 3) or rgb.dtype != np.uint8:
            got = f"shape {rgb.shape} dtype {rgb.dtype}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise ValueError(f"frame must be ({h}, {w}, 3) uint8 RGB for {str(self.path)!r}, got {got}")
        out_w, out_h = self.size
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:out_h, :out_w]), format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = 1 / self._stream.codec_context.framerate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flush the encoder and move the finished file into place."""
        if self._closed:
            return
        if self.frames_written == 0:
            self.abort()
            raise ValueError(f"no frames were written to {str(self.path)!r}")
        self._closed = True
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
            os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop writing and delete the partial file."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(av.error.FFmpegError):
            self._container.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
