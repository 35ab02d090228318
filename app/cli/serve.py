"""`surglens serve`: the dashboard and its background analysis worker, started and stopped together."""
from __future__ import annotations

import argparse
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "main.py"


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


def _serve(args: argparse.Namespace) -> int:
    from library.config import Settings

    settings = Settings.from_env()  # read here too, so a bad SURGLENS_* value fails before anything starts
    notice = exposure_notice(args.address, args.port, bool(os.environ.get("SURGLENS_PASSWORD")))  # app/auth.py
    if notice:
        print(notice, file=sys.stderr, flush=True)
    signal.signal(signal.SIGTERM, _stop)
    env = dict(os.environ, YOLO_OFFLINE="True")
    worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env)
    cmd = streamlit_command(args.address, args.port, settings.max_upload_mb)
    print(f"SurgLens on http://{args.address}:{args.port}  (worker pid {worker.pid}; Ctrl+C stops both)", file=sys.stderr)
    app = subprocess.Popen(cmd, env=env)
    try:
        return app.wait()
    except KeyboardInterrupt:
        app.send_signal(signal.SIGINT)
        return app.wait()
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()


def register(sub) -> None:
    """Add `serve`."""
    p = sub.add_parser("serve", help="start the dashboard (127.0.0.1 by default) and the analysis worker")
    p.add_argument("--address", "--host", dest="address", default=os.environ.get("SURGLENS_ADDRESS", "127.0.0.1"),
                   help="bind address (default 127.0.0.1: this machine only); 0.0.0.0 serves the network, "
                        "with no authentication unless SURGLENS_PASSWORD is set")
    p.add_argument("--port", type=int, default=int(os.environ.get("SURGLENS_PORT", "8501")))
    p.set_defaults(func=_serve)
