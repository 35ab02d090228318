"""`surglens serve`: what it starts hides error details and uses the library's upload limit, wherever it is run."""
import signal
import subprocess
import sys

import pytest

from app.cli import main
from app.cli.serve import APP, streamlit_command


def _option(cmd: list[str], name: str) -> str:
    return cmd[cmd.index(name) + 1]


def test_streamlit_command_line():
    cmd = streamlit_command("127.0.0.1", 8599, 2048.0)
    assert cmd[:5] == [sys.executable, "-m", "streamlit", "run", str(APP)]
    assert _option(cmd, "--client.showErrorDetails") == "none"  # "false" would still show tracebacks
    assert _option(cmd, "--server.maxUploadSize") == "2048"
    assert _option(cmd, "--server.address") == "127.0.0.1" and _option(cmd, "--server.port") == "8599"
    assert _option(cmd, "--browser.gatherUsageStats") == "false" and _option(cmd, "--server.headless") == "true"
    assert _option(streamlit_command("127.0.0.1", 1, 0.5), "--server.maxUploadSize") == "1"  # whole MB, at least 1


def test_streamlit_reads_the_options_over_a_config_file_elsewhere(tmp_path):
    """From another folder with its own config.toml, the command line still wins."""
    (tmp_path / ".streamlit").mkdir()
    (tmp_path / ".streamlit" / "config.toml").write_text('[client]\nshowErrorDetails = "full"\n[server]\nmaxUploadSize = 200\n')
    options = streamlit_command("127.0.0.1", 8599, 700.0)[5:]
    shown = subprocess.run([sys.executable, "-m", "streamlit", "config", "show", *options], cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    lines = {line.strip() for line in shown.stdout.splitlines()}
    assert 'showErrorDetails = "none"' in lines and "maxUploadSize = 700" in lines


def test_serve_starts_the_dashboard_with_the_settings_limit(monkeypatch, tmp_path):
    monkeypatch.setenv("SURGLENS_MAX_UPLOAD_MB", "300")
    (worker, worker_env), (app, app_env) = _serve(monkeypatch, tmp_path, ["--port", "8600"])
    assert worker[-1] == "worker" and app[3:5] == ["run", str(APP)]
    assert _option(app, "--server.maxUploadSize") == "300" and _option(app, "--client.showErrorDetails") == "none"
    assert worker_env["YOLO_OFFLINE"] == app_env["YOLO_OFFLINE"] == "True"


def test_repository_config_hides_error_details_too():
    from tests.conftest import REPO

    try:
        import tomllib
    except ImportError:  # pragma: no cover - Python < 3.11
        pytest.skip("tomllib needs Python 3.11")
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


@pytest.mark.parametrize(("address", "loopback"), [("127.0.0.1", True), ("127.0.1.1", True), ("::1", True),
                                                   ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                   ("192.168.1.20", False), ("surglens.example", False)])
def test_only_loopback_addresses_stay_on_this_machine(address, loopback):
    from app.cli.serve import exposure_notice, is_loopback

    assert is_loopback(address) is loopback
    assert (exposure_notice(address, 8501, password_set=False) is None) is loopback


def _serve(monkeypatch, tmp_path, argv: list[str]) -> list[tuple[list[str], dict]]:
    """`surglens serve argv` with Popen faked; the (command, env) of each process it started: worker, app."""
    started = []

    class Process:
        pid = 4242

        def __init__(self, cmd, env=None):
            started.append((cmd, env))

        def wait(self, timeout=None):
            return 0

        def poll(self):
            return None

        def terminate(self):
            pass

    prepared = []
    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(subprocess, "Popen", Process)
    monkeypatch.setattr(subprocess, "run", lambda cmd, env=None, **kw: prepared.append((cmd, env, list(started))))
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # keep pytest's own SIGTERM handling
    assert main(["serve", *argv]) == 0
    # The models' torch-needing exports run first, alone (models/prepare.py), with the offline environment.
    assert [(cmd[-2:], env["YOLO_OFFLINE"], before) for cmd, env, before in prepared] == [(["-m", "models.prepare"], "True", [])]
    return started


def _serve_on(monkeypatch, tmp_path, argv):
    """The app's command line of `surglens serve argv`."""
    return _serve(monkeypatch, tmp_path, argv)[1][0]


def test_serve_on_all_interfaces_says_it_has_no_authentication(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SURGLENS_PASSWORD", raising=False)
    app = _serve_on(monkeypatch, tmp_path, ["--host", "0.0.0.0", "--port", "8601"])
    assert _option(app, "--server.address") == "0.0.0.0"
    assert "WARNING: SurgLens listens on 0.0.0.0:8601 with NO AUTHENTICATION" in capsys.readouterr().err


def test_serve_on_all_interfaces_with_a_password(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SURGLENS_PASSWORD", "s3cret")
    _serve_on(monkeypatch, tmp_path, ["--host", "0.0.0.0"])
    err = capsys.readouterr().err
    assert "asks for SURGLENS_PASSWORD" in err and "NO AUTHENTICATION" not in err


def test_serve_on_localhost_by_default_says_nothing(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("SURGLENS_ADDRESS", raising=False)
    app = _serve_on(monkeypatch, tmp_path, [])
    assert _option(app, "--server.address") == "127.0.0.1"
    assert "listens" not in capsys.readouterr().err
