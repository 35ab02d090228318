"""Phase training / evaluation data: videos with per-second phase labels and their frames.

Two layouts are read:
- CholecT50 (`labels/VIDxx.json` + `videos/VIDxx/NNNNNN.jpg`): sparse 1 fps frame images; every
  image of the folder is used as input, the labelled ones are also scored.
- Cholec80 (`videos/videoXX.mp4` + `phase_annotations/videoXX-phase.txt`): the video is decoded at
  1 fps (its real fps read from the file) and each sampled frame takes the label of its time.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from models.datasets.cholec80 import PhaseAnnotation
from models.datasets.voc import DatasetError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


@dataclass(frozen=True)
class PhaseVideo:
    """One video of a phase data set: ground truth, and where its frames come from."""

    name: str
    labels: PhaseAnnotation
    images: dict[float, Path] = field(default_factory=dict)  # time (s) -> frame image
    video_path: Path | None = None
    sample_fps: float = 1.0

    @property
    def layout(self) -> str:
        return "video" if self.video_path is not None else "images"

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """(time in seconds, RGB uint8 frame) in time order."""
        if self.video_path is not None:
            from video import FrameReader

            # Training and evaluation frames are the exact targets k / F (every frame decoded), as the cached
            # features and the cards were made; analysis may serve a target with a reference frame up to a frame late.
            for frame in FrameReader(self.video_path, sample_fps=self.sample_fps, skip_nonref=False):
                yield frame.timestamp_s, frame.rgb
            return
        from PIL import Image

        for t, path in sorted(self.images.items()):
            with Image.open(path) as im:
                yield t, np.asarray(im.convert("RGB"))


def read_phase_dataset(root: str | Path, videos: list[str] | None = None) -> list[PhaseVideo]:
    """Every video of a CholecT50 or Cholec80 root (or the named ones), sorted by name."""
    root = Path(root)
    if (root / "labels").is_dir():
        from models.datasets.cholect50 import read_cholect50

        return [
            PhaseVideo(v.name, v.phases, {frame / v.fps: path for frame, path in v.images.items()})
            for v in read_cholect50(root, videos)
        ]
    if (root / "phase_annotations").is_dir() and (root / "videos").is_dir():
        return _read_cholec80(root, videos)
    raise DatasetError(
        f"{str(root)!r} is neither a CholecT50 root (labels/ + videos/) nor a Cholec80 root (videos/ + phase_annotations/)"
    )


def _read_cholec80(root: Path, videos: list[str] | None) -> list[PhaseVideo]:
    from models.datasets.cholec80 import read_cholec80_phases
    from video import probe

    files = {p.stem: p for p in sorted((root / "videos").iterdir()) if p.suffix.lower() in VIDEO_SUFFIXES}
    names = sorted(files) if videos is None else videos
    unknown = [v for v in names if v not in files]
    if unknown:
        raise DatasetError(f"videos {unknown} not in {str(root / 'videos')!r}; available: {sorted(files)}")
    out = []
    for name in names:
        labels_file = root / "phase_annotations" / f"{name}-phase.txt"
        if not labels_file.exists():
            raise DatasetError(f"no phase annotation {str(labels_file)!r} for video {str(files[name])!r}")
        fps = probe(files[name], content_hash=False).fps
        out.append(PhaseVideo(name, read_cholec80_phases(labels_file, fps), video_path=files[name]))
    if not out:
        raise DatasetError(f"no videos in {str(root / 'videos')!r}")
    return out
