"""`surglens library import` (by path) and `surglens library mask`, and `surglens analyze --mask`."""
from __future__ import annotations

import json

import av
import numpy as np
import pytest

from app.cli import main


def _video(path):
    with av.open(str(path), mode="w", format="mp4") as out:
        out.metadata["title"] = "Patient Jane Doe"
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 9 * i, np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def test_import_by_path_and_mask(tmp_path, capsys):
    data, video = tmp_path / "data", _video(tmp_path / "recording.mp4")
    assert main(["library", "import", str(video), "--data-dir", str(data)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["created"] is True and video.exists()
    assert main(["library", "mask", str(line["id"]), "--region", "0,0,0.4,0.1", "--region", "0.6,0.9,1,1",
                 "--data-dir", str(data)]) == 0
    assert json.loads(capsys.readouterr().out)["mask_regions"] == [[0.0, 0.0, 0.4, 0.1], [0.6, 0.9, 1.0, 1.0]]
    assert main(["library", "mask", str(line["id"]), "--clear", "--data-dir", str(data)]) == 0
    assert json.loads(capsys.readouterr().out)["mask_regions"] == []


@pytest.mark.parametrize("region", ["0,0,2,1", "0,0,1", "x"])
def test_bad_mask_region_is_refused_by_the_parser(region, capsys):
    with pytest.raises(SystemExit):
        main(["library", "mask", "1", "--region", region])
    assert "mask region" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["analyze", "v.mp4", "--out", "o", "--mask", region])


def test_import_of_a_folder_is_refused(tmp_path, capsys):
    assert main(["library", "import", str(tmp_path), "--data-dir", str(tmp_path / "data")]) != 0
    assert "is a folder" in capsys.readouterr().err
