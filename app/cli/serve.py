"""`surglens serve`: the dashboard and its background analysis worker, started and stopped together.

The worker is supervised: when it dies (a crash, the OOM killer) it is started again, a few times
in a row at most. Stopping gives the worker `WORKER_GRACE_S` to hand its job back; a worker that
has to be killed has its job given back here, so a shutdown never counts as a failed attempt.
"""
from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

# app/server.py: app/main.py as an st.App with the route that streams videos by range (app/video_links.py)
APP = Path(__file__).resolve().parent.parent / "server.py"
WORKER_GRACE_S = 30.0  # a stop lands at the next progress report; model loading can take a while
POLL_S = 1.0
MAX_RESTARTS = 5  # within RESTART_WINDOW_S: a worker dying at once every time is not restarted forever
RESTART_WINDOW_S = 300.0


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same path as Ctrl+C, so the worker is stopped too


def streamlit_command(address: str, port: int, max_upload_mb: float) -> list[str]:
    """The `streamlit run` command line of the dashboard.

    Every setting that matters is on the command line, so it holds wherever `serve` is started
    from (.streamlit/config.toml is read only from the working directory): no error details or
    tracebacks in the browser ("none"; "false" would still show tracebacks), no usage statistics,
    and Streamlit's upload limit equal to the library's, so an upload over it gets one clear
    message naming the limit instead of Streamlit's default 200 MB.
    """
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", address, "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.showErrorDetails", "none", "--client.toolbarMode", "minimal",
        "--server.maxUploadSize", str(max(1, math.ceil(max_upload_mb))),
    ]


def is_loopback(address: str) -> bool:
    """Whether `address` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: it may well be reachable from the network


def exposure_notice(address: str, port: int, password_set: bool) -> str | None:
    """What `serve` says when it binds beyond this machine; None on a loopback address."""
    if is_loopback(address):
        return None
    if password_set:
        return (f"SurgLens listens on {address}:{port} for other machines. It asks for SURGLENS_PASSWORD (one "
                "shared password, no user accounts); the traffic is not encrypted: serve it behind HTTPS.")
    return (f"WARNING: SurgLens listens on {address}:{port} with NO AUTHENTICATION: anyone who can reach this "
            "port can see, upload and delete cases. Set SURGLENS_PASSWORD to ask for a password, and serve it "
            "behind HTTPS; or keep the default 127.0.0.1.")


def stop_worker(worker: Any, settings: Any, grace_s: float = WORKER_GRACE_S) -> bool:
    """Stop the worker (SIGTERM: it gives its job back); kill it after `grace_s` and give its job back here.

    Returns True when it had to be killed.
    """
    if worker is None or worker.poll() is not None:
        return False
    worker.terminate()
    try:
        worker.wait(timeout=grace_s)
        return False
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    try:
        from library.store import Library

        with Library(settings) as library:
            released = library.jobs.release_process(worker.pid)
        if released:
            print(f"analysis job(s) {released} given back to the queue (the worker was stopped)", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - the next worker takes a stale job back anyway
        from library.config import mask_password

        print(f"could not give the stopped worker's job back: {mask_password(str(exc))}", file=sys.stderr)
    return True


def supervise(app: Any, start_worker: Callable[[], Any], settings: Any, *, poll_s: float = POLL_S,
              grace_s: float = WORKER_GRACE_S) -> int:
    """Wait for the dashboard `app` to exit, restarting the worker whenever it dies; then stop the worker."""
    worker = start_worker()
    restarts: list[float] = []
    try:
        while True:
            try:
                return app.wait(timeout=poll_s)
            except subprocess.TimeoutExpired:
                pass
            if worker is None or worker.poll() is None:
                continue
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < RESTART_WINDOW_S]
            if len(restarts) >= MAX_RESTARTS:
                print(f"the analysis worker stopped (exit code {worker.returncode}) {len(restarts) + 1} times within "
                      f"{RESTART_WINDOW_S / 60:.0f} min; not restarting it: see data/logs/worker.log", file=sys.stderr)
                worker = None
                continue
            restarts.append(now)
            print(f"the analysis worker stopped (exit code {worker.returncode}); starting it again", file=sys.stderr)
            worker = start_worker()
    except KeyboardInterrupt:
        app.send_signal(signal.SIGINT)
        return app.wait()
    finally:
        stop_worker(worker, settings, grace_s)


def _serve(args: argparse.Namespace) -> int:
    from library.config import Settings

    settings = Settings.from_env()  # read here too, so a bad SURGLENS_* value fails before anything starts
    notice = exposure_notice(args.address, args.port, bool(os.environ.get("SURGLENS_PASSWORD")))  # app/auth.py
    if notice:
        print(notice, file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop)
    env = dict(os.environ, YOLO_OFFLINE="True")
    # Exports that need torch (first start only), alone, before anything else holds memory: models/prepare.py.
    subprocess.run([sys.executable, "-m", "models.prepare"], env=env, stdout=subprocess.DEVNULL)
    workers = [subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env)]
    cmd = streamlit_command(args.address, args.port, settings.max_upload_mb)
    print(f"SurgLens on http://{args.address}:{args.port}  (worker pid {workers[0].pid}; Ctrl+C stops both)",
          file=sys.stderr)
    app = subprocess.Popen(cmd, env=env)

    def start_worker() -> Any:
        if workers:
            return workers.pop()  # the first one, started before the dashboard
        return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env)

    return supervise(app, start_worker, settings)


def register(sub) -> None:
    """Add `serve`."""
    p = sub.add_parser("serve", help="start the dashboard (127.0.0.1 by default) and the analysis worker")
    p.add_argument("--address", "--host", dest="address", default=os.environ.get("SURGLENS_ADDRESS", "127.0.0.1"),
                   help="bind address (default 127.0.0.1: this machine only); 0.0.0.0 serves the network, "
                        "with no authentication unless SURGLENS_PASSWORD is set")
    p.add_argument("--port", type=int, default=int(os.environ.get("SURGLENS_PORT", "8501")))
    p.set_defaults(func=_serve)
