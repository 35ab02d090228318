"""Exports: case and collection zips, and the self-contained HTML report."""
from __future__ import annotations

import io
import json
import re
import zipfile

import plotly.graph_objects as go
import pytest

from analysis.moments import clock
from library import Library, Settings
from library.export import export_case, export_collection, html_report, zip_bytes
from library.worker import Worker
from tests.library.conftest import fake_analyze, fake_video


@pytest.fixture
def analysed(lib, tmp_path):
    case, _ = lib.ingest(fake_video(tmp_path, "Jane_Roe_theatre3.mp4"))
    Worker(lib, fake_analyze).run_once()
    lib.add_tag(case.id, "calot")
    lib.update_metadata(case.id, surgeon_id="S07", difficulty=3, notes="<b>adhesions</b>")
    lib.add_comment(case.id, 65.0 / 3, "clip placed", author="T1")  # 0:22
    lib.add_comment(case.id, 2.0, "start", kind="bookmark")
    return lib.get_case(case.id)


def test_case_zip_content(lib, analysed):
    data = zip_bytes(lambda f: export_case(lib, analysed.id, f))
    zf = zipfile.ZipFile(io.BytesIO(data))
    root = f"case-{analysed.id}"
    assert sorted(zf.namelist()) == sorted(f"{root}/{name}" for name in [
        "teaching.json", "report.html", "case.json", "tables/detections.csv", "tables/tool_presence.csv",
        "motion.json", "phase_segments.json", "annotated.mp4", "clips/clip_00000000-00002000.mp4",
        "standard/detections_coco_results.json", "standard/coco_categories.json", "standard/tracks_mot.txt",
    ])
    assert json.loads(zf.read(f"{root}/standard/detections_coco_results.json")) == [
        {"image_id": 25, "category_id": 1, "bbox": [1.0, 2.0, 29.0, 38.0], "score": 0.9}]
    assert zf.read(f"{root}/standard/tracks_mot.txt").decode() == "26,1,1.00,2.00,29.00,38.00,0.9000,-1,-1,-1\n"
    teaching = json.loads(zf.read(f"{root}/teaching.json"))
    assert teaching["case"]["tags"] == ["calot"] and teaching["case"]["surgeon_id"] == "S07"
    assert [c["text"] for c in teaching["comments"]] == ["clip placed"]
    assert [c["text"] for c in teaching["bookmarks"]] == ["start"]
    case_json = json.loads(zf.read(f"{root}/case.json"))
    assert "path" not in case_json["video"] and "sha256" not in case_json["video"]
    assert "creation_time" not in case_json["video"] and "device" not in case_json["video"]
    assert zf.read(f"{root}/annotated.mp4") == b"annotated-mp4"
    assert zf.getinfo(f"{root}/annotated.mp4").compress_type == zipfile.ZIP_STORED
    assert zf.read(f"{root}/tables/tool_presence.csv").decode().startswith("second,Grasper,")
    everything = b"".join(zf.read(n) for n in zf.namelist())
    for secret in (b"Jane_Roe", b"theatre3", analysed.sha256.encode(), str(lib.settings.data_dir).encode(), b"EndoCam"):
        assert secret not in everything


def test_collection_zip_keeps_order(lib, analysed, make_case, tmp_path):
    queued = make_case()  # not analysed: only its teaching data and report
    coll = lib.create_collection("Clipping: 101")
    lib.add_to_collection(coll.id, analysed.id)
    lib.add_to_collection(coll.id, queued, position=0)
    out = tmp_path / "set.zip"
    export_collection(lib, coll.id, out)
    zf = zipfile.ZipFile(out)
    manifest = json.loads(zf.read("clipping-101/collection.json"))
    assert [c["folder"] for c in manifest["cases"]] == [f"01-case-{queued}", f"02-case-{analysed.id}"]
    names = zf.namelist()
    assert f"clipping-101/01-case-{queued}/teaching.json" in names
    assert not any(n.startswith(f"clipping-101/01-case-{queued}/case.json") for n in names)
    assert f"clipping-101/02-case-{analysed.id}/annotated.mp4" in names


def test_html_report_is_self_contained(lib, analysed):
    def figures(case, result, comments):
        assert result is not None and len(comments) == 2
        return [go.Figure(go.Bar(x=list(case.tool_seconds), y=list(case.tool_seconds.values()))),
                go.Figure(go.Scatter(x=[c.timestamp_s for c in comments], y=[1, 1]))]

    page = html_report(lib, analysed.id, figures)
    assert not re.search(r"<script[^>]*\bsrc=", page)  # plotly.js inlined, no CDN or any remote script
    assert not re.search(r"<link[^>]*\bhref=", page)
    assert page.count("Plotly.newPlot") == 2 and len(page) > 1_000_000  # the library once, two charts
    assert "&lt;b&gt;adhesions&lt;/b&gt;" in page  # user text is escaped
    assert "0:22" in page and "clip placed" in page and "Grasper" in page and "S07" in page
    assert "Jane_Roe" not in page


def test_html_report_without_charts_or_results(lib, make_case):
    case_id = make_case()
    page = html_report(lib, case_id)
    assert "Plotly" not in page and f"Case {case_id}" in page and "queued" in page


@pytest.mark.parametrize(("seconds", "text"), [(0, "0:00"), (59.6, "1:00"), (754, "12:34"), (3723, "1:02:03")])
def test_clock(seconds, text):
    assert clock(seconds) == text


def test_html_report_an_educator_can_hand_out(tmp_path):
    """Display names, key frames per phase from the real video, answers under their comment, print CSS, no lane cut."""
    from analysis.charts import report_figures
    from tests.app.conftest import fake_analyze, make_video

    with Library(Settings(data_dir=tmp_path / "data")) as lib:
        case, _ = lib.ingest(make_video(tmp_path / "v.mp4", seconds=6), title="Teaching case")
        Worker(lib, fake_analyze, poll_s=0.01).run(once=True)
        question = lib.add_comment(case.id, 3.0, "Is this the cystic artery?", author="T02")
        lib.add_comment(case.id, 0.0, "Yes, clip it.", parent_id=question.id, author="E01")
        page = html_report(lib, case.id, figures=report_figures)
        figures = report_figures(lib.get_case(case.id), lib.case_results(case.id), lib.list_comments(case.id))
    assert "Calot triangle dissection" in page and "CalotTriangleDissection" not in page
    assert "time_on_screen_s" not in page and "On screen (s)" in page
    assert page.count("<figure><img src='data:image/jpeg;base64,") == 2  # one key frame per phase
    assert "Preparation, 0:00–0:02 (frame at 0:01)" in page
    assert page.index("Is this the cystic artery?") < page.index("↳ Yes, clip it.")
    assert "@media print" in page and "break-inside:avoid" in page
    timeline = figures[0]
    assert timeline.layout.margin.l >= 150 and timeline.layout.legend.x > 1  # lane labels room, legend beside
    assert timeline.layout.title.text and all(f.layout.width == figures[0].layout.width for f in figures)
    comments = next(t for t in timeline.data if t.name == "comments")
    assert list(comments.x) == [3.0]  # the answer has no marker of its own
