"""AnatomyStage in the pipeline: per-second anatomy areas and CVS probabilities in anatomy.parquet."""
import json

import numpy as np
import pandas as pd
import pytest

from analysis.pipeline import run_pipeline
from analysis.stages.anatomy import ANATOMY, AnatomyStage
from models.anatomy.data import CLASSES
from models.registry import MODELS_DIR
from tests.conftest import shared_path

CALOT_CLIP = "0.975__group_57__VID22_372_and_VID26_693_b.mp4"  # hook dissecting the cystic artery


@pytest.mark.parametrize("every_s", [0, -1.0])
def test_bad_interval_is_refused(every_s):
    with pytest.raises(ValueError, match=repr(every_s)):
        AnatomyStage(every_s=every_s)


@pytest.mark.skipif(not (MODELS_DIR / "anatomy" / "weights.pt").is_file(), reason="needs the shipped anatomy model")
def test_stage_on_a_real_calot_triangle_clip(tmp_path):
    clip = shared_path("cholec-clips", CALOT_CLIP)
    case = run_pipeline(clip, tmp_path / "case", [AnatomyStage(every_s=1.0)], sample_fps=2.0)
    table = pd.read_parquet(tmp_path / "case" / ANATOMY)
    assert len(table) == 32 and table["second"].tolist() == list(range(32))  # one row per second of the 32 s clip
    areas = [f"area_{c}" for c in CLASSES[1:]]
    assert set(areas + ["cvs_c1", "cvs_c2", "cvs_c3", "cvs_all", "frame_index", "timestamp_s"]) <= set(table.columns)
    assert ((table[areas] >= 0) & (table[areas] <= 1)).all().all()
    assert table[["cvs_c1", "cvs_c2", "cvs_c3"]].apply(lambda c: c.between(0, 1)).all().all()
    # A dissection scene: the gallbladder is seen in most seconds.
    assert (table["area_gallbladder"] > 0.01).mean() > 0.5
    summary = case.summary("anatomy")
    assert "not for clinical use" in json.dumps(summary)
    assert np.isfinite(table["cvs_all"]).all()
