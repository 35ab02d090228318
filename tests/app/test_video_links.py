"""Streaming the player's video by HTTP range requests through a signed, expiring link (app/video_links.py, app/server.py)."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from app import video_links
from tests.conftest import REPO


@pytest.fixture
def data_dir(tmp_path):
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    (data / "cases" / "3").mkdir(parents=True)
    (data / "videos" / ("a" * 64 + ".mp4")).write_bytes(bytes(range(256)) * 40)
    (data / "cases" / "3" / "proxy.mp4").write_bytes(b"proxy")
    (data / "library.db").write_bytes(b"secret database")
    (tmp_path / "outside.mp4").write_bytes(b"not in the library")
    return data


def test_links_only_for_videos_in_the_library_folders(data_dir, tmp_path):
    video = data_dir / "videos" / ("a" * 64 + ".mp4")
    route = video_links.signed_path(video, data_dir)
    assert route.startswith("/surglens/video/") and route.endswith("videos/" + "a" * 64 + ".mp4")
    assert video_links.signed_path(data_dir / "library.db", data_dir) is None
    assert video_links.signed_path(tmp_path / "outside.mp4", data_dir) is None
    token, relative = route.removeprefix("/surglens/video/").split("/", 1)
    assert video_links.verify(token, relative, data_dir) == video
    assert video_links.verify(token, "cases/3/proxy.mp4", data_dir) is None  # the token is for one file
    assert video_links.verify(token, "../outside.mp4", data_dir) is None
    assert video_links.verify("1.deadbeef", relative, data_dir) is None  # expired and forged
    old = video_links.signed_path(video, data_dir, now=time.time() - video_links.LIFETIME_S - 10)
    assert video_links.verify(old.split("/")[3], relative, data_dir) is None  # expired


def test_player_source_falls_back_to_the_path_without_the_route(data_dir, monkeypatch):
    video = data_dir / "cases" / "3" / "proxy.mp4"
    assert video_links.player_source(video, data_dir, "http://127.0.0.1:8501/case_review") == str(video)
    monkeypatch.setattr(video_links, "ROUTES_ACTIVE", True)
    url = video_links.player_source(video, data_dir, "http://127.0.0.1:8501/case_review?case=3")
    assert url.startswith("http://127.0.0.1:8501/surglens/video/") and url.endswith("/cases/3/proxy.mp4")
    assert video_links.player_source(video, data_dir, None) == str(video)


def test_the_route_answers_range_requests(data_dir, monkeypatch):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    monkeypatch.setenv("SURGLENS_DATA_DIR", str(data_dir))
    monkeypatch.setattr(video_links, "ROUTES_ACTIVE", video_links.ROUTES_ACTIVE)  # importing the server sets it
    from app import server

    client = TestClient(Starlette(routes=server.routes()))
    route = video_links.signed_path(data_dir / "videos" / ("a" * 64 + ".mp4"), data_dir)
    part = client.get(route, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == (bytes(range(256)) * 40)[100:200]
    assert part.headers["content-range"] == "bytes 100-199/10240" and part.headers["content-type"] == "video/mp4"
    assert client.get(route.replace("videos/", "cases/3/proxy.mp4#")).status_code == 404
    assert client.get("/surglens/video/1.abc/library.db").status_code == 404


def test_serve_app_starts_with_the_route(tmp_path, data_dir):
    """`streamlit run app/server.py` (what `surglens serve` starts) serves the dashboard and mounts the route."""
    from app.cli.serve import streamlit_command

    port = 8731
    env = dict(os.environ, SURGLENS_DATA_DIR=str(data_dir))
    proc = subprocess.Popen(streamlit_command("127.0.0.1", port, 100.0), cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(proc.stderr.read()[-3000:] if proc.poll() is not None else "no answer")
                time.sleep(0.5)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/surglens/video/1.abc/videos/{'a' * 64}.mp4", timeout=5)
        assert err.value.code == 404  # the route runs and refuses an unsigned request
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_exports_are_served_from_their_own_folder_and_expire(data_dir, monkeypatch):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    monkeypatch.setenv("SURGLENS_DATA_DIR", str(data_dir))
    monkeypatch.setattr(video_links, "ROUTES_ACTIVE", True)
    from app import server

    old = video_links.export_folder(data_dir, now=time.time() - video_links.EXPORT_KEEP_S - 60)
    os.utime(old, (time.time() - video_links.EXPORT_KEEP_S - 60,) * 2)
    folder = video_links.export_folder(data_dir)
    assert not old.exists() and folder.parent == data_dir / "tmp" / "exports"
    (folder / "case-3.zip").write_bytes(b"PK zip bytes")
    (data_dir / "tmp" / "loose.zip").write_bytes(b"PK")
    (folder / "note.txt").write_text("x")
    url = video_links.download_url(folder / "case-3.zip", data_dir, "https://surglens.local:8501/case_review")
    assert url.startswith("https://surglens.local:8501/surglens/video/") and url.endswith("/case-3.zip")
    assert video_links.signed_path(data_dir / "tmp" / "loose.zip", data_dir) is None
    assert video_links.signed_path(folder / "note.txt", data_dir) is None
    response = TestClient(Starlette(routes=server.routes())).get(url.removeprefix("https://surglens.local:8501"))
    assert response.status_code == 200 and response.content == b"PK zip bytes"
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="case-3.zip"' in response.headers["content-disposition"]


def test_deep_links_point_the_frontend_at_the_root(monkeypatch):
    """/analytics?case=1 serves Streamlit's page with its server at the root, so the frontend never probes
    /analytics/_stcore/health (a 404 in the console and the log); other paths are left to Streamlit."""
    from starlette.applications import Starlette
    from starlette.testclient import TestClient

    monkeypatch.setattr(video_links, "ROUTES_ACTIVE", video_links.ROUTES_ACTIVE)  # importing the server sets it
    from app import server

    assert {"analytics", "case_review", "library", "models"} <= set(server.page_paths())
    client = TestClient(Starlette(routes=server.routes()))
    page = client.get("/analytics?case=1")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    head = page.text[page.text.index("<head>"):]
    assert head.index(server.ROOT_BACKEND) < head.index("<script type=\"module\"")  # before the bundle reads it
    assert "BACKEND_BASE_URL:window.location.origin+'/'" in page.text
    assert client.head("/case_review").status_code == 200
    assert client.get("/not_a_page").status_code == 404  # not ours: Streamlit's own routes answer it
