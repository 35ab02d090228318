"""The quality stage measures at most `max_fps` frames per second of video."""
import pandas as pd
import pytest

from analysis.pipeline import run_pipeline
from analysis.results import QUALITY
from analysis.stages.quality import QualityStage


def test_quality_is_measured_at_most_max_fps(tiny_video, tmp_path):
    case = run_pipeline(tiny_video, tmp_path / "case", [QualityStage(max_fps=5.0)], sample_fps=None)  # 25 fps, 2.4 s
    table = pd.read_parquet(tmp_path / "case" / QUALITY)
    assert table["timestamp_s"].round(2).tolist() == [round(0.2 * i, 2) for i in range(12)]
    assert case.summary("quality")["frames"] == 12
    run_pipeline(tiny_video, tmp_path / "all", [QualityStage(max_fps=None)], sample_fps=None)
    assert len(pd.read_parquet(tmp_path / "all" / QUALITY)) == 60
    with pytest.raises(ValueError, match="max_fps must be a positive number or None .*, got 0"):
        QualityStage(max_fps=0)
