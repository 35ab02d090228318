"""The large-recording upload route: signed batch tokens, streamed to disk, limits, no partial left (app/upload_links.py)."""
from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from app import upload_links, video_links


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("SURGLENS_DATA_DIR", str(data))
    monkeypatch.delenv("SURGLENS_MAX_UPLOAD_MB", raising=False)
    return data


@pytest.fixture
def app(data_dir, monkeypatch):
    from starlette.applications import Starlette

    monkeypatch.setattr(video_links, "ROUTES_ACTIVE", video_links.ROUTES_ACTIVE)  # importing the server sets it
    from app import server

    return Starlette(routes=server.routes())


@pytest.fixture
def client(app):
    from starlette.testclient import TestClient

    return TestClient(app)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_tokens_are_signed_expire_and_name_only_a_batch():
    token = upload_links.new_token()
    batch = upload_links.verify(token)
    assert batch is not None and len(batch) == 24 and token.split(".")[1] == batch
    expires, _, signature = token.split(".")
    assert upload_links.verify(f"{expires}.{'0' * 24}.{signature}") is None  # the signature is for one batch
    assert upload_links.verify(f"{int(expires) + 1}.{batch}.{signature}") is None  # and one expiry
    assert upload_links.verify(token + ".x") is None and upload_links.verify("../../etc") is None
    old = upload_links.new_token(batch, now=time.time() - upload_links.LIFETIME_S - 10)
    assert upload_links.verify(old) is None
    # a video link's signature is no upload token (keys are separate)
    assert upload_links.verify(f"{expires}.{batch}.{video_links._signature(batch, int(expires))}") is None
    with pytest.raises(ValueError, match="not a batch id: '../x'"):
        upload_links.new_token("../x")


def test_a_page_keeps_its_token_and_renews_it_for_the_same_batch():
    now = time.time()
    token = upload_links.page_token(None, now)
    assert upload_links.page_token(token, now + 60) == token
    later = now + upload_links.LIFETIME_S - upload_links.RENEW_S / 2  # expiring soon: renewed, same folder
    renewed = upload_links.page_token(token, later)
    assert renewed != token and upload_links.verify(renewed, later) == upload_links.verify(token, now)
    assert upload_links.verify(upload_links.page_token("forged.token.x", now)) is not None  # a new batch


@pytest.mark.parametrize(("name", "ext"), [("recording.MP4", "mp4"), ("../../../etc/passwd.mp4", "mp4"),
                                           ("..\\..\\tower\\x.TS", "ts"), ("a.mp4/../../b", ""), ("noext", ""),
                                           (".hidden", ""), ("x.m p4", ""), ("x.toolongext", ""), (None, "")])
def test_only_a_plain_extension_is_taken_from_a_name(name, ext):
    assert upload_links.extension(name) == ext


def test_an_upload_is_streamed_to_the_batch_staging_folder(client, data_dir):
    token = upload_links.new_token()
    batch = upload_links.verify(token)
    body = os.urandom(3 << 20)
    reply = client.put(f"/surglens/upload/{token}?name=Patient_Smith.MP4&n=2&of=3", content=body)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["ok"] is True
    (staged,) = upload_links.staged_files(data_dir / "tmp", batch)
    assert staged.path.name == f"{answer['staged']}.mp4" and answer["staged"].startswith("2of3-")
    assert (staged.number, staged.count, staged.ext) == (2, 3, "mp4")
    assert staged.path.read_bytes() == body
    assert _files(data_dir) == [f"tmp/staged/{batch}/{staged.path.name}"]  # no partial, no name kept
    assert "Patient_Smith" not in json.dumps(answer)


@pytest.mark.parametrize("token", ["1.aaaaaaaaaaaaaaaaaaaaaaaa.deadbeef", "garbage", "1.2.3"])
def test_bad_and_expired_tokens_are_refused(client, data_dir, token):
    reply = client.put(f"/surglens/upload/{token}?name=a.mp4", content=b"video")
    assert reply.status_code == 403
    assert reply.json() == {"ok": False, "error": "this upload link is not valid or has expired; reload the Library page"}
    expired = upload_links.new_token(now=time.time() - upload_links.LIFETIME_S - 1)
    assert client.put(f"/surglens/upload/{expired}", content=b"video").status_code == 403
    assert client.put("/surglens/upload/../videos/x.mp4", content=b"video").status_code in (403, 404, 405)
    assert client.get(f"/surglens/upload/{upload_links.new_token()}").status_code == 405  # PUT only
    assert _files(data_dir) == []


def test_traversal_names_stay_in_the_staging_folder(client, data_dir):
    token = upload_links.new_token()
    batch = upload_links.verify(token)
    for name in ("../../../../outside.mp4", "..%2F..%2Fvideos%2Fx.mp4", "/etc/passwd", "a/../../b.ts", "C:\\x\\y.mkv"):
        reply = client.put(f"/surglens/upload/{token}", params={"name": name}, content=b"frames")
        assert reply.status_code == 200, (name, reply.text)
    names = _files(data_dir)
    assert len(names) == 5 and all(n.startswith(f"tmp/staged/{batch}/1of1-") for n in names)
    assert sorted(Path(n).suffix for n in names) == ["", ".mkv", ".mp4", ".mp4", ".ts"]
    assert not (data_dir.parent / "outside.mp4").exists()


@pytest.mark.parametrize("query", ["n=0&of=1", "n=3&of=2", "n=x&of=1", "n=1&of=1000"])
def test_bad_positions_are_refused(client, data_dir, query):
    reply = client.put(f"/surglens/upload/{upload_links.new_token()}?{query}", content=b"frames")
    assert reply.status_code == 400 and reply.json()["ok"] is False
    assert _files(data_dir) == []


def test_over_the_limit_is_refused_with_its_size_and_leaves_no_partial(client, data_dir, monkeypatch):
    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "1")
    token = upload_links.new_token()
    reply = client.put(f"/surglens/upload/{token}?name=a.mp4", content=b"x" * (2 << 20))  # Content-Length: at once
    assert reply.status_code == 413
    assert reply.json() == {"ok": False, "error": "the file is 2 MB, over the upload limit of 1 MB"}

    def chunks():  # no Content-Length: found out while streaming
        for _ in range(8):
            yield b"x" * (256 << 10)

    reply = client.put(f"/surglens/upload/{token}?name=a.mp4", content=chunks())
    assert reply.status_code == 413
    assert reply.json() == {"ok": False, "error": "the file is over the upload limit of 1 MB"}
    assert _files(data_dir) == []
    assert client.put(f"/surglens/upload/{token}", content=b"").json() == {"ok": False,
                                                                           "error": "the file is empty (0 bytes)"}
    assert _files(data_dir) == []


def test_too_little_free_disk_is_refused(client, data_dir, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 << 30, 0, 300 << 20))
    reply = client.put(f"/surglens/upload/{upload_links.new_token()}", content=b"x" * (100 << 20))
    assert reply.status_code == 507
    assert reply.json()["error"] == "the file is 100 MB and the library's disk has only 300 MB free; make room first"
    assert _files(data_dir) == []


def _scope(token: str, query: bytes = b"name=a.mp4") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "PUT", "scheme": "http",
            "path": f"/surglens/upload/{token}", "raw_path": f"/surglens/upload/{token}".encode(),
            "query_string": query, "headers": [(b"host", b"testserver")], "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000), "root_path": ""}


def test_a_client_that_goes_away_leaves_no_partial(app, data_dir):
    token = upload_links.new_token()
    seen_partial = []

    async def run() -> list[dict]:
        messages = [{"type": "http.request", "body": b"x" * (3 << 20), "more_body": True}]
        sent: list[dict] = []

        async def receive() -> dict:
            if messages:
                return messages.pop(0)
            seen_partial.extend(_files(data_dir))  # the first piece is on disk by now
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(_scope(token), receive, send)
        return sent

    asyncio.run(run())
    assert seen_partial and seen_partial[0].startswith("tmp/incoming/") and seen_partial[0].endswith(".part")
    assert _files(data_dir) == []


def test_two_uploads_at_once_each_land_whole(app, data_dir):
    import httpx

    token = upload_links.new_token()
    batch = upload_links.verify(token)
    bodies = [os.urandom(2 << 20) + b"first", os.urandom(2 << 20) + b"second"]
    incoming = data_dir / "tmp" / "incoming"

    async def body(data: bytes):
        yield data[: 1 << 20]
        deadline = time.monotonic() + 10
        while len(list(incoming.glob("*.part"))) < 2:  # both are being received at the same time
            assert time.monotonic() < deadline, "the second upload never started"
            await asyncio.sleep(0.01)
        yield data[1 << 20:]

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            return await asyncio.gather(*(c.put(f"/surglens/upload/{token}", params={"name": "a.mp4", "n": n, "of": 2},
                                                content=body(data)) for n, data in enumerate(bodies, 1)))

    replies = asyncio.run(run())
    assert [r.status_code for r in replies] == [200, 200], [r.text for r in replies]
    staged = {s.number: s for s in upload_links.staged_files(data_dir / "tmp", batch)}
    assert staged[1].path.read_bytes() == bodies[0] and staged[2].path.read_bytes() == bodies[1]
    assert not list(incoming.iterdir())


def test_sweep_removes_only_what_dead_uploads_left(data_dir):
    tmp = data_dir / "tmp"
    batch = upload_links.verify(upload_links.new_token())
    folder = upload_links.staging_dir(tmp, batch)
    folder.mkdir(parents=True)
    (tmp / "incoming").mkdir()
    old, fresh = time.time() - upload_links.LIFETIME_S - 60, time.time()
    for path, when in ((tmp / "incoming" / "dead.part", old), (tmp / "incoming" / "live.part", fresh),
                       (folder / "1of1-0123456789abcdef.mp4", old), (tmp / "upload-check.mp4", old)):
        path.write_bytes(b"x")
        os.utime(path, (when, when))
    upload_links.sweep(tmp)
    assert _files(data_dir) == ["tmp/incoming/live.part", "tmp/upload-check.mp4"]  # the library's own file stays
    assert not folder.exists()


def test_uploader_html_carries_the_route_and_the_limit():
    token = upload_links.new_token()
    html = upload_links.uploader_html(token, 5 << 20, "5 MB")
    assert f'"route": "/surglens/upload/{token}"' in html and '"limit": 5242880' in html and '"limitText": "5 MB"' in html
    assert 'type="file"' in html and "multiple" in html and "window.parent.location.origin" in html
    assert "/*CONFIG*/" not in html


def test_the_body_is_never_held_in_memory(app, data_dir):
    import tracemalloc

    import httpx

    token = upload_links.new_token()
    piece = os.urandom(64 << 10)

    async def body():
        for _ in range(1024):  # 64 MiB in the pieces a server hands over
            yield piece

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            return await c.put(f"/surglens/upload/{token}", params={"name": "a.mp4"}, content=body())

    tracemalloc.start()
    try:
        reply = asyncio.run(run())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert reply.status_code == 200, reply.text
    (staged,) = upload_links.staged_files(data_dir / "tmp", upload_links.verify(token))
    assert staged.path.stat().st_size == 64 << 20
    assert peak < 16 << 20, f"{peak / 2**20:.1f} MiB held while streaming 64 MiB"
