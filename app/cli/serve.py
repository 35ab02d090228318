"""`surglens serve`: the dashboard and its background analysis worker, started and stopped together."""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "main.py"


def _stop(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM takes the same path as Ctrl+C, so the worker is stopped too


def _serve(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, _stop)
    env = dict(os.environ, YOLO_OFFLINE="1")
    worker = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env=env)
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.address", args.address, "--server.port", str(args.port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]
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
