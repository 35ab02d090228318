"""`analyze_video`: the one entry point the CLI and the dashboard worker call."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.pipeline import ProgressCallback, Stage, run_pipeline

if TYPE_CHECKING:
    from analysis.results import CaseResult


@dataclass
class AnalysisConfig:
    """Which stages run and how; every field has the dashboard's default."""

    sample_fps: float | None = 1.0
    detect: bool = True
    track: bool = True
    tracker: str = "bytetrack"  # or "botsort"; YAML in assets/trackers/
    detect_every: int = 1  # detector on every k-th analysed frame, tracked boxes between
    phase: bool = True
    quality: bool = True
    annotate: bool | None = None  # None: the annotated video only from 5 analysed fps on (AnnotateStage.min_fps)
    detector_weights: str | None = None  # None = shipped weights in assets/
    phase_weights: str | None = None
    # Anatomy masks and CVS criteria (assets/models/anatomy); a case without that model gets a note, no stage output.
    anatomy: bool = True
    anatomy_every_s: float | None = None  # None = every 1 s below 10 minutes of video, else every 5 s
    anatomy_weights: str | None = None  # None = the shipped "anatomy"
    # Rectangles (x0, y0, x1, y1, frame fractions) blacked out in the annotated video (video/mask.py)
    mask_regions: list[list[float]] | None = None

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

        # A phase model that reads pooled detector features needs the torch backend (OpenVINO gives
        # boxes only): choose it up front rather than switch after the first batch.
        backend = "torch" if config.phase and config.detector_weights is None and _phase_needs_features(config.phase_weights) else None
        detection = DetectionStage(weights=config.detector_weights, track=config.track, tracker=config.tracker,
                                   detect_every=config.detect_every, backend=backend)
        stages.append(detection)
    anatomy = None
    if config.anatomy:  # before the phase stage, which reads its class areas at finish
        from analysis.stages.anatomy import AnatomyStage

        anatomy = AnatomyStage(model=config.anatomy_weights, every_s=config.anatomy_every_s)
        stages.append(anatomy)
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
    from analysis.stages.thumbnail import ThumbnailStage

    stages.append(ThumbnailStage(mask=config.mask_regions))
    if detection is not None and config.annotate is not False:
        from analysis.stages.annotate import ANNOTATE_MIN_FPS, AnnotateStage

        stages.append(AnnotateStage(detection, mask=config.mask_regions, anatomy=anatomy,
                                    min_fps=ANNOTATE_MIN_FPS if config.annotate is None else None))
    return stages


def _phase_needs_features(weights: str | None) -> bool:
    """Whether the phase model reads pooled detector features (the HMM model), not tool confidences only."""
    from models.phase import is_temporal
    from models.registry import resolve_model

    return not is_temporal(resolve_model(weights or "phase"))  # metadata only: the stage loads the weights


def analyze_video(
    video_path: str | Path,
    out_dir: str | Path,
    config: AnalysisConfig | None = None,
    progress: ProgressCallback | None = None,
    *,
    sha256: str | None = None,
) -> "CaseResult":
    """Analyse one video into `out_dir` (case.json + per-stage tables); returns the published case.

    `out_dir` must be absent, empty or a previous case (analysis.results.check_output_folder):
    checked before any model loads, and a folder of anything else is refused, never deleted.
    `sha256`: the file's known content hash (the library's), so it is not hashed again.
    """
    from analysis.results import check_output_folder

    check_output_folder(out_dir)
    config = config or AnalysisConfig()
    return run_pipeline(video_path, out_dir, build_stages(config), sample_fps=config.sample_fps, progress=progress,
                        sha256=sha256)
