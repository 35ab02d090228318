import numpy as np
import pandas as pd
import pytest

from models.detections import Detections


def make(n=3):
    return Detections(np.arange(n * 4).reshape(n, 4), np.linspace(0.1, 0.9, n), np.arange(n), frame_index=np.full(n, 7))


def test_defaults_and_columns():
    d = make()
    assert len(d) == 3 and (d.tracker_id == -1).all() and (d.frame_index == 7).all()
    table = pd.DataFrame(d.to_columns())
    assert list(table.columns) == ["x1", "y1", "x2", "y2", "confidence", "class_id", "tracker_id", "frame_index"]
    np.testing.assert_array_equal(table[["x1", "y1", "x2", "y2"]].to_numpy(), d.xyxy)


def test_indexing_and_merge():
    d = make()
    assert len(d[d.confidence > 0.4]) == 2
    assert len(d[1]) == 1
    merged = Detections.merge([d, Detections.empty(), d[0:1]])
    assert len(merged) == 4
    assert len(Detections.merge([])) == 0


def test_column_length_mismatch_names_column():
    with pytest.raises(ValueError, match="confidence has 1 rows, xyxy has 2"):
        Detections(np.zeros((2, 4)), [0.5], [0, 1])
