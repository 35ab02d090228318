"""`analyze_video`: the one entry point the CLI and the dashboard worker call."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from analysis.pipeline import ProgressCallback, Stage, run_pipeline


@dataclass
class AnalysisConfig:
    """Which stages run and how; every field has the dashboard's default."""

    sample_fps: float | None = 1.0
    detect: bool = True
    track: bool = True
    tracker: str = "bytetrack"  # or "botsort"; YAML in assets/trackers/
    phase: bool = True
    quality: bool = True
    annotate: bool = True
    detector_weights: str | None = None  # None = shipped weights in assets/
    phase_weights: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def build_stages(config: AnalysisConfig) -> list[Stage]:
    """The one place stages are registered, in the order they run."""
    stages: list[Stage] = []
    # Imports are local so a stage's heavy dependencies load only when it is enabled.
    if config.quality:
        from analysis.stages.quality import QualityStage

        stages.append(QualityStage())
    detection = None
    if config.detect:
        from analysis.stages.detection import DetectionStage

        detection = DetectionStage(weights=config.detector_weights, track=config.track, tracker=config.tracker)
        stages.append(detection)
    if config.phase:
        from analysis.stages.phase import PhaseStage

        # The phase model's features must come from the detector it was trained with: share the
        # detection stage's detector (one forward pass per frame) only when that is the shipped one.
        shared = detection.detector if detection is not None and config.detector_weights is None else None
        stages.append(PhaseStage(weights=config.phase_weights, detector=shared))
    if config.detect:
        from analysis.stages.motion import MotionStage

        stages.append(MotionStage())
    from analysis.stages.playback import PlaybackStage

    stages.append(PlaybackStage())
    if detection is not None and config.annotate:
        from analysis.stages.annotate import AnnotateStage

        stages.append(AnnotateStage(detection))
    return stages


def analyze_video(
    video_path: str | Path,
    out_dir: str | Path,
    config: AnalysisConfig | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Analyse one video into `out_dir` (case.json + per-stage tables); returns the case dict.

    `out_dir` must be absent, empty or a previous case (analysis.pipeline.check_output_folder):
    checked before any model loads, and a folder of anything else is refused, never deleted.
    """
    from analysis.pipeline import check_output_folder

    check_output_folder(out_dir)
    config = config or AnalysisConfig()
    case = run_pipeline(video_path, out_dir, build_stages(config), sample_fps=config.sample_fps, progress=progress)
    return case
