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


def _serve(args: argparse.Namespace) -> int:
    from library.config import Settings

    settings = Settings.from_env()  # read here too, so a bad SURGLENS_* value fails before anything starts
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
    p.add_argument("--address", default=os.environ.get("SURGLENS_ADDRESS", "127.0.0.1"),
                   help="bind address; keep 127.0.0.1 unless the machine's network is trusted")
    p.add_argument("--port", type=int, default=int(os.environ.get("SURGLENS_PORT", "8501")))
    p.set_defaults(func=_serve)
