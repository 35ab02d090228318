"""The large-recording uploader: the browser streams a file to disk through a signed link, never into memory.

`st.file_uploader` keeps every uploaded file in the server's memory until the browser session ends
(Streamlit's MemoryUploadedFileManager), a 60-90 minute recording's whole size in RAM. Under
`surglens serve` (app/server.py) the Library page shows a small uploader (`uploader_html`, an iframe
of the page's origin) that PUTs each file to `/surglens/upload/<token>?name=...&n=..&of=..`; the
route writes the body chunk by chunk to `tmp/incoming/` (`Receiver`), enforcing the size limit and
the free disk while it streams, and renames the complete file into `tmp/staged/<batch>/`. The page
polls that folder and ingests what arrived (`Library.ingest_staged`, which deletes the staged file).

A token carries an expiry and the page's batch id (its staging folder) under an HMAC keyed from
app/video_links.py's process secret, so only a Library page that was shown (after the password
gate) can make one, and it names no path. The browser sends only the file's extension (as the
name "upload.<ext>"); the route uses a name only for its extension, and file names are never kept.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath

from app import video_links

ROUTE_PREFIX = "/surglens/upload"
LIFETIME_S = 24 * 3600
RENEW_S = 3600  # a page renews its token (same batch) when it expires within this
INCOMING = "incoming"  # tmp/incoming/<batch>-<random>.part: uploads being received
STAGED = "staged"  # tmp/staged/<batch>/<n>of<of>-<id>.<ext>: complete uploads waiting for the page
DISK_RESERVE = 256 << 20  # an upload never leaves the library's disk with less free than this
DISK_CHECK_EVERY = 256 << 20  # bytes written between free-disk checks while streaming
IDLE_PARTIAL_S = 3600  # a partial file not written to for this long belongs to a dead upload
MAX_BATCH_FILES = 999
_KEY = hmac.new(video_links._SECRET, b"surglens large-recording upload", hashlib.sha256).digest()
_BATCH = re.compile(r"^[0-9a-f]{24}$")
_EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")
_STAGED_NAME = re.compile(r"^(?P<n>\d{1,3})of(?P<of>\d{1,3})-[0-9a-f]{16}(?:\.(?P<ext>[a-z0-9]{1,8}))?$")


class UploadRefused(Exception):
    """An upload the route refuses: `status` is the HTTP status, the message says why in plain words."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _signature(batch: str, expires: int) -> str:
    return hmac.new(_KEY, f"{batch}\n{expires}".encode(), hashlib.sha256).hexdigest()[:40]


def new_token(batch: str | None = None, now: float | None = None) -> str:
    """A token for `batch` (default a new one), valid for LIFETIME_S: "<expires>.<batch>.<signature>"."""
    batch = batch or secrets.token_hex(12)
    if not _BATCH.match(batch):
        raise ValueError(f"not a batch id: {batch!r}")
    expires = int((time.time() if now is None else now) + LIFETIME_S)
    return f"{expires}.{batch}.{_signature(batch, expires)}"


def verify(token: str, now: float | None = None) -> str | None:
    """The batch id of a valid, unexpired token, else None."""
    parts = str(token).split(".")
    if len(parts) != 3:
        return None
    expires_text, batch, signature = parts
    if not expires_text.isdigit() or not _BATCH.match(batch):
        return None
    if int(expires_text) < (time.time() if now is None else now):
        return None
    return batch if hmac.compare_digest(signature, _signature(batch, int(expires_text))) else None


def page_token(current: str | None, now: float | None = None) -> str:
    """The token a page keeps: `current` while it has RENEW_S left, else one renewed for the same batch."""
    now = time.time() if now is None else now
    if current and verify(current, now + RENEW_S):
        return current
    batch = verify(current, now) if current else None
    return new_token(batch, now)


def extension(name: str | None) -> str:
    """The extension of a file name, lower-case without the dot, when it is a plain token; else ""."""
    base = PureWindowsPath(PurePosixPath(str(name or "")).name).name  # no folder part of either kind
    ext = PurePosixPath(base).suffix.lower().lstrip(".")
    return ext if _EXTENSION.match(ext) else ""


def staging_dir(tmp_dir: str | Path, batch: str) -> Path:
    if not _BATCH.match(str(batch)):
        raise ValueError(f"not a batch id: {batch!r}")
    return Path(tmp_dir) / STAGED / batch


@dataclass(frozen=True)
class Staged:
    """A complete upload in a batch's staging folder: video `number` of `count` chosen together."""

    path: Path
    number: int
    count: int
    ext: str


def staged_files(tmp_dir: str | Path, batch: str) -> list[Staged]:
    """The complete uploads of `batch`, in the order they arrived (partial ones are never in the folder)."""
    folder = staging_dir(tmp_dir, batch)
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    for entry in entries:
        match = _STAGED_NAME.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        found.append((entry.stat().st_mtime_ns, entry.name,
                      Staged(Path(entry.path), int(match["n"]), int(match["of"]), match["ext"] or "")))
    return [staged for *_, staged in sorted(found, key=lambda f: (f[0], f[1]))]


def sweep(tmp_dir: str | Path, now: float | None = None) -> None:
    """Remove what dead uploads left: partial files idle for IDLE_PARTIAL_S, staged files older than LIFETIME_S."""
    now = time.time() if now is None else now
    tmp_dir = Path(tmp_dir)
    for folder, age in ((tmp_dir / INCOMING, IDLE_PARTIAL_S), *((d, LIFETIME_S) for d in _batch_dirs(tmp_dir))):
        try:
            entries = list(folder.iterdir())
        except OSError:
            continue
        for path in entries:
            try:
                if path.is_file() and now - path.stat().st_mtime > age:
                    path.unlink()
            except OSError:
                pass
        if folder.parent.name == STAGED:
            try:
                folder.rmdir()  # only when empty
            except OSError:
                pass


def _batch_dirs(tmp_dir: Path) -> list[Path]:
    try:
        return [d for d in (tmp_dir / STAGED).iterdir() if _BATCH.match(d.name) and d.is_dir()]
    except OSError:
        return []


def _gb(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


class Receiver:
    """One upload being written to `tmp/incoming/`; `finish` renames it into the batch's staging folder.

    `length` is the request's Content-Length when given: checked against `limit` and the free disk at once.
    """

    def __init__(self, tmp_dir: str | Path, batch: str, ext: str, number: int, count: int, limit: int,
                 limit_text: str, length: int | None = None):
        if not 1 <= number <= count <= MAX_BATCH_FILES:
            raise UploadRefused(400, f"file number {number!r} of {count!r} is not a valid position")
        self.tmp_dir, self.batch, self.ext = Path(tmp_dir), batch, ext if _EXTENSION.match(ext) else ""
        self.number, self.count, self.limit, self.limit_text = number, count, limit, limit_text
        staging_dir(self.tmp_dir, batch)  # checks the batch id
        if length is not None and length > limit:
            raise UploadRefused(413, f"the file is {_gb(length)}, over the upload limit of {limit_text}")
        incoming = self.tmp_dir / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        if length is not None:
            free = shutil.disk_usage(incoming).free
            if length * 2 + DISK_RESERVE > free:  # the upload and its metadata-free copy exist together for a moment
                raise UploadRefused(507, f"the file is {_gb(length)} and the library's disk has only {_gb(free)} "
                                         "free; make room first")
        self.partial = incoming / f"{batch}-{secrets.token_hex(8)}.part"
        self._out = open(self.partial, "xb")
        self.received = 0
        self._checked_at = 0

    def write(self, data: bytes) -> None:
        """Append `data`; UploadRefused (the partial removed) over the limit or when the disk runs low."""
        self.received += len(data)
        if self.received > self.limit:
            self.discard()
            raise UploadRefused(413, f"the file is over the upload limit of {self.limit_text}")
        self._out.write(data)
        if self.received - self._checked_at >= DISK_CHECK_EVERY:
            self._checked_at = self.received
            if shutil.disk_usage(self.partial.parent).free < DISK_RESERVE:
                self.discard()
                raise UploadRefused(507, "the library's disk is full; make room first")

    def finish(self) -> str:
        """Close the file and move it into the staging folder (atomically); returns its staged id."""
        self._out.close()
        if self.received == 0:
            self.discard()
            raise UploadRefused(400, "the file is empty (0 bytes)")
        folder = staging_dir(self.tmp_dir, self.batch)
        folder.mkdir(parents=True, exist_ok=True)
        staged_id = f"{self.number}of{self.count}-{secrets.token_hex(8)}"
        try:
            os.replace(self.partial, folder / (f"{staged_id}.{self.ext}" if self.ext else staged_id))
        except OSError:
            self.discard()
            raise
        return staged_id

    def discard(self) -> None:
        """Close and remove the partial file (a refused or interrupted upload)."""
        self._out.close()
        self.partial.unlink(missing_ok=True)


def uploader_html(token: str, limit: int, limit_text: str) -> str:
    """The uploader's page (an iframe of the dashboard's origin): a file input, a progress bar and a status per file.

    Files go one at a time by XHR PUT to the route; a file over `limit` bytes is refused before it is sent.
    """
    config = json.dumps({"route": f"{ROUTE_PREFIX}/{token}", "limit": int(limit), "limitText": limit_text})
    return _HTML.replace("/*CONFIG*/null", config)


_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><style>
  body { margin: 0; padding: 2px 0 6px; font: 14px/1.4 "Source Sans Pro", "Source Sans 3", sans-serif; }
  .pick { display: flex; align-items: center; gap: .75rem; padding: .75rem 1rem; border-radius: .5rem;
          background: rgba(128, 128, 128, .08); }
  .pick span { opacity: .75; }
  .row { display: grid; grid-template-columns: minmax(8rem, 1fr) minmax(8rem, 2fr); gap: .15rem .75rem;
         align-items: center; margin-top: .5rem; }
  .row .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .row progress { width: 100%; height: .6rem; }
  .row .status { grid-column: 1 / 3; font-size: 13px; opacity: .85; }
  .row.failed .status { color: #d33; opacity: 1; }
  .row.done .status { color: #1a7f37; opacity: 1; }
</style></head><body>
<div class="pick"><input type="file" id="files" multiple accept="video/*,.ts,.m2ts,.mts,.mxf,.vob,.mkv">
  <span>Streamed to this machine's disk. Keep this page open until every file says it was received.</span></div>
<div id="rows"></div>
<script>
(() => {
  const config = /*CONFIG*/null;
  try {  // look like the page around the frame (same origin)
    const style = window.parent.getComputedStyle(window.parent.document.body);
    document.body.style.color = style.color;
    document.body.style.fontFamily = style.fontFamily;
  } catch (e) {}
  const input = document.getElementById("files"), rows = document.getElementById("rows");
  const queue = [];
  let busy = false;
  const size = n => n >= 2 ** 30 ? (n / 2 ** 30).toFixed(1) + " GB" : Math.round(n / 2 ** 20) + " MB";
  const extension = name => { const m = /\\.([A-Za-z0-9]{1,8})$/.exec(name); return m ? m[1].toLowerCase() : ""; };
  function addRow(file) {
    const row = document.createElement("div");
    row.className = "row";
    row.innerHTML = '<span class="name"></span><progress max="100" value="0"></progress><span class="status"></span>';
    row.querySelector(".name").textContent = file.name;  // shown here only: the server never gets the name
    row.querySelector(".status").textContent = "waiting";
    rows.appendChild(row);
    return row;
  }
  function show(row, state, text, percent) {
    if (state) row.classList.add(state);
    row.querySelector(".status").textContent = text;
    if (percent !== undefined) row.querySelector("progress").value = percent;
  }
  function next() {
    if (busy || !queue.length) return;
    const job = queue.shift(), file = job.file;
    if (file.size === 0) { show(job.row, "failed", "Not uploaded: the file is empty (0 bytes)."); return next(); }
    if (file.size > config.limit) {
      show(job.row, "failed", "Not uploaded: the file is " + size(file.size) + ", over the upload limit of " +
           config.limitText + ". Import it by its path (\\"Import a video file from this machine\\").");
      return next();
    }
    busy = true;
    const ext = extension(file.name);
    const query = "?name=" + encodeURIComponent(ext ? "upload." + ext : "upload") + "&n=" + job.n + "&of=" + job.of;
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", window.parent.location.origin + config.route + query);
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = e => {
      if (e.lengthComputable) show(job.row, "", "uploading: " + size(e.loaded) + " of " + size(e.total),
                                   Math.floor(100 * e.loaded / e.total));
    };
    const finish = (state, text) => { show(job.row, state, text, state === "done" ? 100 : undefined); busy = false; next(); };
    xhr.onload = () => {
      let reply = null;
      try { reply = JSON.parse(xhr.responseText); } catch (e) {}
      if (xhr.status === 200 && reply && reply.ok) {
        finish("done", "Received; SurgLens is checking it (the result appears on the page).");
      } else {
        finish("failed", "Not uploaded: " + (reply && reply.error ? reply.error : "the server answered " + xhr.status) + ".");
      }
    };
    xhr.onerror = () => finish("failed", "Not uploaded: the connection to SurgLens was lost. Try again.");
    xhr.onabort = () => finish("failed", "Not uploaded: the upload was stopped.");
    xhr.send(file);
  }
  input.addEventListener("change", () => {
    const files = Array.from(input.files);
    input.value = "";
    files.forEach((file, i) => queue.push({ file, n: i + 1, of: files.length, row: addRow(file) }));
    next();
  });
})();
</script></body></html>
"""
