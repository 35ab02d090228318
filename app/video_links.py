"""Signed links that let the browser stream a library video by HTTP range requests (no copy in memory).

`st.video(path)` reads the whole file into the server's memory on every rerun (Streamlit serves
media from memory), which a 60-90 minute recording cannot afford. When the dashboard runs through
app/server.py (what `surglens serve` starts), a Starlette route serves files of the library's
`videos/` and `cases/` folders with range support, and the pages give the player a link to it.
A link carries an HMAC of the file's path and an expiry under a secret drawn when the server
process starts, so only a page that was shown (after the password gate) can make one; nothing
outside those two folders, and nothing but video files, is ever served. Without the route (a bare
`streamlit run app/main.py`, tests), the pages fall back to `st.video(path)`.

Exports are served the same way: a zip written to `tmp/exports/<random>/<name>.zip` (`export_folder`)
is downloaded through a signed link, streamed from disk, and removed after `EXPORT_KEEP_S`.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from pathlib import Path, PurePosixPath
from urllib.parse import quote, urlsplit

ROUTE_PREFIX = "/surglens/video"
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".ts", ".avi", ".mpg")
# (leading folders relative to the data folder, the file suffixes served from them)
SERVED = ((("videos",), VIDEO_SUFFIXES), (("cases",), VIDEO_SUFFIXES), (("tmp", "exports"), (".zip",)))
LIFETIME_S = 12 * 3600
EXPORT_KEEP_S = 2 * 3600
_SECRET = secrets.token_bytes(32)
ROUTES_ACTIVE = False  # set by app/server.py, whose process serves the route


def _signature(relative: str, expires: int) -> str:
    return hmac.new(_SECRET, f"{relative}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def _relative(path: Path, data_dir: Path) -> str | None:
    """`path` relative to `data_dir` as a POSIX string, when it is a servable file; else None."""
    try:
        relative = Path(path).resolve().relative_to(Path(data_dir).resolve())
    except ValueError:
        return None
    parts = relative.parts
    for folders, suffixes in SERVED:
        if parts[:len(folders)] == folders and len(parts) > len(folders) and relative.suffix.lower() in suffixes:
            return relative.as_posix()
    return None


def signed_path(path: str | Path, data_dir: str | Path, now: float | None = None) -> str | None:
    """The route path ("/surglens/video/<token>/<relative path>") of a library file, or None when it is not servable."""
    relative = _relative(Path(path), Path(data_dir))
    if relative is None:
        return None
    expires = int((time.time() if now is None else now) + LIFETIME_S)
    return f"{ROUTE_PREFIX}/{expires}.{_signature(relative, expires)}/{quote(relative)}"


def verify(token: str, relative: str, data_dir: str | Path, now: float | None = None) -> Path | None:
    """The file a request for `token`/`relative` may read, or None (bad or expired token, outside the folders)."""
    expires_text, _, signature = str(token).partition(".")
    if not expires_text.isdigit() or int(expires_text) < (time.time() if now is None else now):
        return None
    if not hmac.compare_digest(signature, _signature(relative, int(expires_text))):
        return None
    pure = PurePosixPath(relative)
    if pure.is_absolute() or ".." in pure.parts:
        return None
    path = Path(data_dir) / pure
    if _relative(path, Path(data_dir)) != relative or not path.is_file():  # no links out of the folders
        return None
    return path


def player_source(path: str | Path, data_dir: str | Path, page_url: str | None) -> str:
    """What to give st.video: a streaming link when the route runs and the file is servable, else the path."""
    if not ROUTES_ACTIVE or not page_url:
        return str(path)
    route = signed_path(path, data_dir)
    if route is None:
        return str(path)
    parts = urlsplit(page_url)
    if not parts.scheme or not parts.netloc:
        return str(path)
    return f"{parts.scheme}://{parts.netloc}{route}"


def export_folder(data_dir: str | Path, now: float | None = None) -> Path:
    """A new folder for one export under `data_dir/tmp/exports`; exports older than EXPORT_KEEP_S are removed."""
    import shutil

    root = Path(data_dir) / "tmp" / "exports"
    root.mkdir(parents=True, exist_ok=True)
    now = time.time() if now is None else now
    for old in root.iterdir():
        try:
            if now - old.stat().st_mtime > EXPORT_KEEP_S:
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        except OSError:
            pass
    folder = root / secrets.token_hex(12)
    folder.mkdir()
    return folder


def download_url(path: str | Path, data_dir: str | Path, page_url: str | None) -> str | None:
    """The absolute streaming link of a file (an export), or None without the route or a page URL."""
    source = player_source(path, data_dir, page_url)
    return None if source == str(path) else source
