"""Bad and damaged media for the video tests, built from the tiny synthetic videos."""
from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def bad_media(tmp_path_factory: pytest.TempPathFactory, make_video) -> dict[str, Path]:
    """Named broken inputs: each must be rejected by `probe` with its own error type."""
    folder = tmp_path_factory.mktemp("bad")
    files: dict[str, Path] = {"missing": folder / "missing.mp4"}

    files["empty"] = folder / "empty.mp4"
    files["empty"].write_bytes(b"")

    files["text"] = folder / "notes.mp4"
    files["text"].write_text("Operative note: laparoscopic cholecystectomy, uneventful.\n" * 20)

    files["png"] = folder / "still.mp4"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(files["png"], format="PNG")

    # moov is written at the end without faststart; cut it off as an interrupted recording would
    whole = make_video("no_faststart.mp4", faststart=False).read_bytes()
    files["no_moov"] = folder / "no_moov.mp4"
    files["no_moov"].write_bytes(whole[: whole.rindex(b"moov") - 4])

    files["audio_only"] = folder / "audio.mp4"
    with av.open(str(files["audio_only"]), mode="w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(16):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)

    # a codec FFmpeg has no decoder for: rename the sample entry fourcc of an H.264 mp4
    files["unknown_codec"] = folder / "unknown_codec.mp4"
    files["unknown_codec"].write_bytes(make_video("to_patch.mp4").read_bytes().replace(b"avc1", b"zzz1"))
    return files


def _overwrite(source: Path, target: Path, start: float, length: int) -> Path:
    data = bytearray(source.read_bytes())
    offset = int(len(data) * start)
    data[offset : offset + length] = np.random.default_rng(1).integers(0, 256, length, dtype=np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


@pytest.fixture(scope="session")
def corrupt_video(tmp_path_factory: pytest.TempPathFactory, tiny_video: Path) -> Path:
    """`tiny_video` with 5% of its bytes overwritten at 45%: several packets cannot be decoded."""
    size = tiny_video.stat().st_size
    return _overwrite(tiny_video, tmp_path_factory.mktemp("corrupt") / "corrupt.mp4", 0.45, size // 20)


@pytest.fixture(scope="session")
def concealed_video(tmp_path_factory: pytest.TempPathFactory, tiny_video: Path) -> Path:
    """`tiny_video` with 3000 bytes overwritten mid-packet: the decoder conceals the errors."""
    return _overwrite(tiny_video, tmp_path_factory.mktemp("concealed") / "concealed.mp4", 0.5, 3000)


@pytest.fixture(scope="session")
def cut_short_video(tmp_path_factory: pytest.TempPathFactory, tiny_video: Path) -> Path:
    """`tiny_video` (moov first) cut in the middle of its media data: the tail frames are missing."""
    data = tiny_video.read_bytes()
    path = tmp_path_factory.mktemp("cut") / "cut_short.mp4"
    path.write_bytes(data[: len(data) // 2])
    return path
