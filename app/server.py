"""The dashboard as an ASGI app (st.App): app/main.py plus the route that streams library videos.

`surglens serve` runs `streamlit run app/server.py` (Streamlit finds the `app` below and serves it
with its usual options). The extra route answers HTTP range requests for files of the library's
videos/ and cases/ folders behind signed, expiring links (app/video_links.py), so the player
streams a long recording from disk instead of Streamlit loading it into memory. A second route takes
the Library page's large-recording uploads (PUT, a signed batch token: app/upload_links.py) and
streams each body to a file under the library's tmp/, never holding it in memory.

Deep links (`/analytics?case=1`): Streamlit's frontend looks for its server under the page's path
first (`/analytics/_stcore/health` and `host-config`, which Streamlit answers 404 so that it falls
back to the root), a failed request in the browser's console and the server's log on every deep
link. Each page's path here serves Streamlit's own index.html with `window.__streamlit.BACKEND_BASE_URL`
set to the root, so the frontend asks the root only.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from app import upload_links, video_links

MAIN = Path(__file__).resolve().parent / "main.py"
MEDIA_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
               ".mkv": "video/x-matroska", ".ts": "video/mp2t", ".avi": "video/x-msvideo", ".mpg": "video/mpeg",
               ".zip": "application/zip"}


def _data_dir() -> Path:
    from library.config import Settings

    return Settings.from_env().data_dir


async def library_video(request: Request) -> Response:
    """A library video by its signed link, with HTTP range support (Starlette's FileResponse)."""
    path = video_links.verify(request.path_params["token"], request.path_params["path"], _data_dir())
    if path is None:
        return PlainTextResponse("Not found", status_code=404)
    media_type = MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream")
    # An export is a download (its file name); a video plays in the page.
    response = FileResponse(path, media_type=media_type, filename=path.name if path.suffix == ".zip" else None)
    response.headers["Cache-Control"] = "private, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


UPLOAD_WRITE_BYTES = 1 << 20  # the body is written in pieces of about this size, in a worker thread


def _refused(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


def _position(request: Request, name: str) -> int:
    text = request.query_params.get(name, "1")
    if not text.isdigit():
        raise upload_links.UploadRefused(400, f"{name} must be a whole number, got {text!r}")
    return int(text)


async def large_upload(request: Request) -> Response:
    """PUT of one large recording: streamed to tmp/incoming/, then renamed into the token's staging folder.

    The size limit (the library's) and the free disk are checked while the body streams; a refused,
    failed or abandoned upload leaves no file. Replies {"ok": true, "staged": id} or {"ok": false, "error": why}.
    """
    from anyio import to_thread

    from library.config import Settings

    batch = upload_links.verify(request.path_params["token"])
    if batch is None:
        return _refused(403, "this upload link is not valid or has expired; reload the Library page")
    try:
        settings = Settings.from_env()
        length_text = request.headers.get("content-length")
        length = int(length_text) if length_text and length_text.isdigit() else None
        receiver = await to_thread.run_sync(lambda: upload_links.Receiver(
            settings.tmp_dir, batch, upload_links.extension(request.query_params.get("name")),
            _position(request, "n"), _position(request, "of"), settings.max_upload_bytes,
            f"{settings.max_upload_mb:g} MB", length))
    except upload_links.UploadRefused as refused:
        return _refused(refused.status, str(refused))
    except ValueError as exc:  # SURGLENS_* settings that do not parse
        return _refused(500, f"the library's settings cannot be read: {exc}")
    except OSError as exc:
        return _refused(500, f"the upload could not be written: {exc.strerror or exc}")
    finished = False
    try:
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= UPLOAD_WRITE_BYTES:
                data, pending = bytes(pending), bytearray()
                await to_thread.run_sync(receiver.write, data)
        if pending:
            await to_thread.run_sync(receiver.write, bytes(pending))
        staged = await to_thread.run_sync(receiver.finish)
        finished = True
    except upload_links.UploadRefused as refused:
        return _refused(refused.status, str(refused))
    except ClientDisconnect:
        return Response(status_code=499)  # nobody reads it: the browser went away
    except OSError as exc:
        return _refused(500, f"the upload could not be written: {exc.strerror or exc}")
    finally:
        if not finished:  # refused, failed, cancelled or disconnected: no partial stays
            receiver.discard()
    return JSONResponse({"ok": True, "staged": staged})


# Before Streamlit's bundle runs: its connection code reads window.__streamlit once, at load.
ROOT_BACKEND = ("<script>window.__streamlit=Object.assign({},window.__streamlit,"
                "{BACKEND_BASE_URL:window.location.origin+'/'});</script>")


def page_paths() -> list[str]:
    """The URL paths of the app's pages (st.Page's default: the file's stem under app/views/)."""
    return sorted(p.stem for p in (MAIN.parent / "views").glob("*.py") if not p.stem.startswith("_"))


def page_index_html() -> str:
    """Streamlit's index.html with the server at the root (see the module's docstring)."""
    from streamlit.file_util import get_static_dir

    html = (Path(get_static_dir()) / "index.html").read_text(encoding="utf-8")
    head = html.find("<head>")
    if head < 0:
        raise RuntimeError("Streamlit's index.html has no <head>; cannot point deep links at the root")
    return html[:head + len("<head>")] + ROOT_BACKEND + html[head + len("<head>"):]


async def page_html(request: Request) -> Response:
    """A deep link to a page: the app's HTML, which connects to the server at the root."""
    return HTMLResponse(page_index_html(), headers={"Cache-Control": "no-cache"})


def routes() -> list[Route]:
    return [Route(video_links.ROUTE_PREFIX + "/{token}/{path:path}", library_video, methods=["GET", "HEAD"]),
            Route(upload_links.ROUTE_PREFIX + "/{token}", large_upload, methods=["PUT"]),
            *(Route(f"/{name}", page_html, methods=["GET", "HEAD"]) for name in page_paths())]


video_links.ROUTES_ACTIVE = True
app = st.App(str(MAIN), routes=routes())
