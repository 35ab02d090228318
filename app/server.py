"""The dashboard as an ASGI app (st.App): app/main.py plus the route that streams library videos.

`surglens serve` runs `streamlit run app/server.py` (Streamlit finds the `app` below and serves it
with its usual options). The extra route answers HTTP range requests for files of the library's
videos/ and cases/ folders behind signed, expiring links (app/video_links.py), so the player
streams a long recording from disk instead of Streamlit loading it into memory.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run app/server.py` puts app/ on sys.path, not the repository root
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import FileResponse, PlainTextResponse, Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from app import video_links  # noqa: E402

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


def routes() -> list[Route]:
    return [Route(video_links.ROUTE_PREFIX + "/{token}/{path:path}", library_video, methods=["GET", "HEAD"])]


video_links.ROUTES_ACTIVE = True
app = st.App(str(MAIN), routes=routes())
