"""Shared fixtures: where the real data is, and skipping cleanly when a clone does not have it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SURGLENS_SHARED_DATA", REPO.parent / "shared" / "data"))
# One cache of derived model files (OpenVINO exports, plain weight copies) for the whole run, whatever data
# folder a test or a server it starts uses: each is made once, not in every test's tmp library. Tests of the
# caching itself give their child processes an environment without it.
os.environ.setdefault("SURGLENS_CACHE_DIR", str(REPO / "data" / "cache"))


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, skipping the calling test when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not available: {path} (needs ../shared/data beside the repository)")
    return path


def dicom_dataset(**elements):
    """A pydicom Dataset with `elements` set by keyword (PatientName="Doe^Jane", ...)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.update(elements)
    return ds


@pytest.fixture(scope="session")
def cholec_clips() -> list[Path]:
    """The real Cholec80 clips (854x480, 25 fps, 800 frames each)."""
    return sorted(shared_path("cholec-clips").glob("*.mp4"))


@pytest.fixture(autouse=True)
def _offline_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOLO_OFFLINE", "1")


# -- tiny synthetic videos (written with PyAV directly, never with video.VideoWriter) -----------
MARKER = 16  # the top-left MARKER x MARKER block of every test frame encodes its index


def marker_index(rgb) -> int:
    """The frame index painted into a `make_video` frame (modulo 30)."""
    return int(round((float(rgb[:MARKER, :MARKER].mean()) - 10.0) / 8.0))


def _test_frame(index: int, size: tuple[int, int]):
    import numpy as np

    w, h = size
    background = np.random.default_rng(7).integers(0, 256, (h, w, 3), dtype=np.uint8)
    rgb = np.roll(background, 2 * index, axis=1)  # moving texture: real inter-frame motion, big packets
    rgb[:MARKER, :MARKER] = 10 + 8 * (index % 30)
    return rgb


def mux_frames(out, stream, frames) -> None:
    """Encode `frames` (av.VideoFrame) into `stream` of the open PyAV container `out`, then flush the encoder."""
    for frame in frames:
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def flat_frames(n_frames: int, step: int, size: tuple[int, int] = (64, 48)):
    """`n_frames` av.VideoFrames of one grey each: frame i is 8-bit grey `step * i`."""
    import av
    import numpy as np

    w, h = size
    return (av.VideoFrame.from_ndarray(np.full((h, w, 3), step * i, np.uint8), format="rgb24") for i in range(n_frames))


@pytest.fixture(scope="session")
def make_video(tmp_path_factory: pytest.TempPathFactory):
    """Factory writing a small video with PyAV; frame i carries `marker_index` i (mod 30).

    `pts_ms` gives every frame its own time (variable frame rate), `rotation` sets the display
    matrix (PyAV's counter-clockwise degrees), `metadata` container tags.
    """
    import av
    from fractions import Fraction

    folder = tmp_path_factory.mktemp("videos")

    def make(
        name: str,
        n_frames: int = 60,
        fps: int = 25,
        size: tuple[int, int] = (96, 64),
        fmt: str = "mp4",
        codec: str = "libx264",
        gop: int = 10,
        faststart: bool = True,
        pts_ms: list[int] | None = None,
        rotation: int | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Path:
        path = folder / name
        options = {"movflags": "+faststart"} if faststart and fmt == "mp4" else {}
        with av.open(str(path), mode="w", format=fmt, options=options) as out:
            out.metadata.update(metadata or {})
            stream = out.add_stream(codec, rate=fps)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            stream.codec_context.gop_size = gop
            if codec == "libx264":
                stream.options = {"crf": "18", **({"bf": "0"} if pts_ms else {})}
            else:
                stream.bit_rate = 4_000_000  # keep the marker block exact under older codecs
            if rotation:
                stream.set_display_rotation(rotation)
            if pts_ms:
                stream.codec_context.time_base = Fraction(1, 1000)
            frames = [av.VideoFrame.from_ndarray(_test_frame(i, size), format="rgb24") for i in range(n_frames)]
            for frame, pts in zip(frames, pts_ms or []):
                frame.pts, frame.time_base = pts, Fraction(1, 1000)
            mux_frames(out, stream, frames)
        return path

    return make


@pytest.fixture(scope="session")
def tiny_video(make_video) -> Path:
    """96x64 H.264 mp4, 25 fps, 60 frames (2.4 s), a keyframe every 10 frames, moov first."""
    return make_video("tiny.mp4")


@pytest.fixture(scope="session")
def vfr_video(make_video) -> Path:
    """Variable frame rate H.264 mp4: 12 frames at irregular times (ms) from 0 to 2.1 s."""
    return make_video("vfr.mp4", n_frames=12, pts_ms=[0, 100, 150, 400, 410, 420, 1000, 1033, 1066, 1500, 2000, 2100])


@pytest.fixture(scope="session")
def marker():
    """`marker(rgb)` -> the frame index (mod 30) painted into a `make_video` frame."""
    return marker_index


@pytest.fixture(scope="session")
def smoke_clips() -> list[Path]:
    """The real DeSmoke-LAP smoky clips (256x256, 2 fps, 50 frames each)."""
    return sorted(shared_path("smoke-clips").glob("*.avi"))


# -- case folders, written through the one writer (analysis.results.CaseWriter) ------------------------
def video_info(fps: float = 25.0, size: tuple[int, int] = (854, 480), duration_s: float = 32.0, **fields):
    """A probed video's description as case folders store it (no path)."""
    from video import VideoInfo

    values = dict(path="", container="mov,mp4,m4a,3gp,3g2,mj2", codec="h264", width=size[0], height=size[1], fps=fps,
                  frame_count=int(round(duration_s * fps)), duration_s=duration_s, rotation=0, has_audio=False,
                  bitrate=None, file_size=0, sha256=None, is_vfr=False)
    return VideoInfo(**{**values, **fields})


def publish_case(out_dir: Path, video=None, *, sample_fps: float | None = 1.0, resize=None, tables=None,
                 segments=None, motion=None, stages=None, frames_analysed: int | None = None):
    """Publish a case folder: `tables` {file name: DataFrame}, `segments` [{start_s, end_s, label, ...}],
    `motion` a motion-report dict, `stages` {name: summary}. Returns the loaded CaseResult."""
    from analysis.results import CaseResult, CaseWriter, MotionReport, Sampling, StageRecord

    video = video or video_info()
    writer = CaseWriter(out_dir)
    for name, table in (tables or {}).items():
        writer.write_table(name, table)
    if segments is not None:
        writer.write_segments(segments)
    if motion is not None:
        writer.write_motion(MotionReport.from_dict(motion))
    frames = frames_analysed if frames_analysed is not None else int(video.duration_s * (sample_fps or video.fps))
    result = CaseResult(writer.path, video, Sampling.of(video, sample_fps, frames, resize),
                        {name: StageRecord("1", 0.0, summary) for name, summary in (stages or {}).items()})
    return writer.publish(result)
