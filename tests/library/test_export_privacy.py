"""What exports and case.json must not carry: operation date, paths, decoder warnings; masks applied to pictures."""
from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from analysis.pipeline import _without_path, run_pipeline
from library import Library
from library.export import export_case, html_report, zip_bytes, zip_to_temp_file
from library.worker import Worker
from tests.library.conftest import fake_analyze, fake_video, write_fake_results
from video.writer import VideoWriter


def _case_with_secrets(lib: Library, tmp_path: Path) -> int:
    case, _ = lib.ingest(fake_video(tmp_path, "op.mp4"), config={"detector_weights": "/home/dr_house/weights/best.pt"})
    Worker(lib, fake_analyze).run_once()
    result_json = lib.case_dir(case.id) / "case.json"
    data = json.loads(result_json.read_text())
    data["decode"] = {"backend": "pyav", "warnings": [f"corrupt frame in {lib.settings.videos_dir}/x.mp4",
                                                      "/mnt/tower/2024-03-01/Jane_Doe.mts: missing picture"]}
    result_json.write_text(json.dumps(data))
    lib.update_metadata(case.id, operation_date=date(2024, 3, 1), procedure="cholecystectomy")
    return case.id


def test_exports_carry_no_operation_date_paths_or_decoder_warnings(lib, tmp_path):
    case_id = _case_with_secrets(lib, tmp_path)
    zf = zipfile.ZipFile(io.BytesIO(zip_bytes(lambda f: export_case(lib, case_id, f))))
    root = f"case-{case_id}"
    teaching = json.loads(zf.read(f"{root}/teaching.json"))["case"]
    assert "operation_date" not in teaching and "analysed_at" not in teaching
    assert teaching["procedure"] == "cholecystectomy"
    assert teaching["analysis_config"]["detector_weights"] == "best.pt"
    case_json = json.loads(zf.read(f"{root}/case.json"))
    assert case_json["decode"] == {"backend": "pyav", "warnings": 2}
    everything = b"".join(zf.read(n) for n in zf.namelist())
    for secret in (b"2024-03-01", b"2024", b"dr_house", b"Jane_Doe", b"/mnt/tower", str(lib.settings.data_dir).encode()):
        assert secret not in everything, secret
    report = html_report(lib, case_id)
    assert "2024" not in report and "Operation date" not in report


def test_an_export_is_written_to_a_temporary_file(lib, tmp_path):
    case_id = _case_with_secrets(lib, tmp_path)
    with zip_to_temp_file(lambda f: export_case(lib, case_id, f), folder=lib.settings.tmp_dir) as out:
        assert zipfile.ZipFile(out).namelist()
        assert list(lib.settings.tmp_dir.iterdir()) == []  # anonymous: nothing to clean up


def test_an_annotated_video_made_before_the_mask_is_left_out(lib, tmp_path):
    case_id = _case_with_secrets(lib, tmp_path)
    names = lambda: zipfile.ZipFile(io.BytesIO(zip_bytes(lambda f: export_case(lib, case_id, f)))).namelist()  # noqa: E731
    assert f"case-{case_id}/annotated.mp4" in names()
    lib.set_mask_regions(case_id, [(0, 0, 0.3, 0.1)])
    assert lib.get_case(case_id).analysis_config["mask_regions"] == [[0.0, 0.0, 0.3, 0.1]]
    assert f"case-{case_id}/annotated.mp4" not in names()
    case_json = lib.case_dir(case_id) / "case.json"  # analysed again with the mask: included again
    data = json.loads(case_json.read_text())
    data.setdefault("stages", {})["annotate"] = {"summary": {"mask_regions": [[0.0, 0.0, 0.3, 0.1]]}}
    case_json.write_text(json.dumps(data))
    assert f"case-{case_id}/annotated.mp4" in names()


def test_report_key_frames_are_masked(settings, tmp_path):
    video = tmp_path / "white.mp4"
    with VideoWriter(video, fps=10, size=(128, 96)) as writer:
        for _ in range(40):
            writer.write(np.full((96, 128, 3), 255, np.uint8))
    with Library(settings) as lib:
        case, _ = lib.ingest(video)
        Worker(lib, lambda v, out, c, p: write_fake_results(out, phases=[(0, 4, "Preparation")], tools={}, duration_s=4.0)).run_once()
        lib.set_mask_regions(case.id, [(0.0, 0.0, 1.0, 0.25)])
        report = html_report(lib, case.id)
    (uri,) = re.findall(r"src='data:image/jpeg;base64,([^']+)'", report)
    frame = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGB"))
    assert frame[: frame.shape[0] // 4 - 2].max() < 40 and frame[frame.shape[0] // 2:].min() > 200


def test_case_json_of_an_analysis_has_no_path_and_takes_a_known_hash(make_video, tmp_path):
    video = make_video("Jane_Doe_2024-03-01.mp4")
    case = run_pipeline(video, tmp_path / "out", [], sample_fps=1.0, sha256="f" * 64)
    text = (tmp_path / "out" / "case.json").read_text()
    assert '"path"' not in text.split('"sampling"')[0] and case.video.sha256 == "f" * 64
    assert "Jane_Doe" not in text and str(video.parent) not in text
    assert case.video.frame_count == 60


def test_decoder_warnings_lose_the_path(tmp_path):
    video = tmp_path / "Jane_Doe" / "op.mp4"
    warnings = [f"error while decoding {video}: missing reference", f"{video.parent}/other.log", "plain"]
    cleaned = _without_path(warnings, video)
    assert cleaned == ["error while decoding <video>: missing reference", "<folder>/other.log", "plain"]


def test_save_export_into_a_folder_never_replaces_a_file(lib, tmp_path):
    from library import LibraryError
    from library.export import save_export

    case_id = _case_with_secrets(lib, tmp_path)
    out = tmp_path / "exports"
    out.mkdir()
    first = save_export(lambda f: export_case(lib, case_id, f), str(out), "case.zip")
    second = save_export(lambda f: export_case(lib, case_id, f), out, "case.zip")
    assert (first.name, second.name) == ("case.zip", "case (2).zip") and zipfile.ZipFile(second).namelist()
    assert sorted(p.name for p in out.iterdir()) == ["case (2).zip", "case.zip"]
    for bad, match in (("relative", "full path"), (str(tmp_path / "nope"), "no such folder"), ("", "full path")):
        with pytest.raises(LibraryError, match=match):
            save_export(lambda f: None, bad, "x.zip")
