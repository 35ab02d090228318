"""ultralytics is offline by construction: settings in SurgLens' data folder, integrations off, and no
connection attempted by `surglens analyze` or by a detector training (traced, not merely survived)."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image, UnidentifiedImageError

from models._ultralytics import NETWORK_SETTINGS, load_ultralytics, ultralytics_config_dir
from models.registry import MODELS_DIR
from tests.conftest import REPO


def test_pil_open_is_pil_own_after_loading_ultralytics(tmp_path):
    load_ultralytics()
    bad = tmp_path / "x.png"
    bad.write_text("not an image")
    with pytest.raises(UnidentifiedImageError):
        Image.open(bad)


def test_sync_and_integrations_are_off():
    load_ultralytics()
    from ultralytics.utils import SETTINGS

    assert SETTINGS["sync"] is False
    for key in NETWORK_SETTINGS:
        assert SETTINGS.get(key, False) is False, key
    assert os.environ["YOLO_OFFLINE"] == "True"


def test_yolo_offline_is_a_value_every_supported_version_reads_as_true(monkeypatch):
    from ultralytics.utils import env_bool

    load_ultralytics()
    value = os.environ["YOLO_OFFLINE"]
    assert env_bool("YOLO_OFFLINE")  # ultralytics >= 8.4: 1/true/yes/on
    assert value.lower() == "true"  # ultralytics 8.3: str(os.getenv("YOLO_OFFLINE", "")).lower() == "true"


def test_config_dir_follows_the_surglens_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path / "lib"))
    assert ultralytics_config_dir() == tmp_path / "lib" / "ultralytics"
    monkeypatch.delenv("SURGLENS_DATA_DIR")
    monkeypatch.chdir(tmp_path)
    assert ultralytics_config_dir() == tmp_path / "data" / "ultralytics"  # library.config's default


def test_fonts_are_never_fetched():
    load_ultralytics()
    from ultralytics.data import utils as data_utils
    from ultralytics.utils import checks

    for module in (checks, data_utils):
        assert Path(module.check_font("Arial.ttf")).is_file()


# -- the connection tracer ---------------------------------------------------------------------------
TRACER = textwrap.dedent(
    '''
    """Test hook (sitecustomize): record and refuse every connection that leaves this machine."""
    import json, os, socket

    _LOG = os.environ["SURGLENS_NET_LOG"]
    _LOCAL = ("localhost", "127.0.0.1", "::1", "0.0.0.0", "")


    def _local(host):
        host = host.decode() if isinstance(host, bytes) else str(host)
        return host in _LOCAL or host.startswith("127.")


    def _refuse(kind, target):
        with open(_LOG, "a") as fh:
            fh.write(json.dumps({"call": kind, "target": repr(target), "pid": os.getpid()}) + "\\n")
        raise OSError(101, f"network is unreachable (test tracer: {kind} {target!r})")


    def _wrap_connect(original, kind):
        def connect(self, address):
            if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
                return _refuse(kind, address)
            return original(self, address)
        return connect


    socket.socket.connect = _wrap_connect(socket.socket.connect, "connect")
    socket.socket.connect_ex = _wrap_connect(socket.socket.connect_ex, "connect_ex")
    _getaddrinfo, _create_connection = socket.getaddrinfo, socket.create_connection
    _gethostbyname = socket.gethostbyname


    def getaddrinfo(host, *args, **kwargs):
        if host is not None and not _local(host):
            return _refuse("getaddrinfo", host)
        return _getaddrinfo(host, *args, **kwargs)


    def create_connection(address, *args, **kwargs):
        if not _local(address[0]):
            return _refuse("create_connection", address)
        return _create_connection(address, *args, **kwargs)


    def gethostbyname(host):
        if not _local(host):
            return _refuse("gethostbyname", host)
        return _gethostbyname(host)


    socket.getaddrinfo, socket.create_connection, socket.gethostbyname = getaddrinfo, create_connection, gethostbyname
    with open(_LOG, "a"):
        pass  # the log exists: the hook is installed
    '''
)


@pytest.fixture
def traced(tmp_path):
    """Run a command under the tracer; returns (completed process, recorded attempts, home, data dir)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(TRACER)
    log, home, data = tmp_path / "net.jsonl", tmp_path / "home", tmp_path / "data"
    home.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "SURGLENS_DATA_DIR": str(data),
        "PYTHONPATH": f"{hook}{os.pathsep}{REPO}", "SURGLENS_NET_LOG": str(log), "XDG_CONFIG_HOME": str(home / ".config"),
        "MPLCONFIGDIR": str(tmp_path / "mpl"), "OMP_NUM_THREADS": "1",
    }

    def run(args: list[str], timeout: float = 600):
        done = subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
        assert log.exists(), f"the tracer was not installed: {done.stderr[-2000:]}"
        attempts = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        return done, attempts

    return run, home, data


def test_the_tracer_catches_a_connection(traced):
    run, _home, _data = traced
    script = textwrap.dedent(
        """
        import socket, urllib.request
        for attempt in (lambda: urllib.request.urlopen("https://example.com", timeout=2),
                        lambda: socket.socket().connect(("192.0.2.1", 80)),
                        lambda: socket.getaddrinfo("dns.google", 443)):
            try:
                attempt()
            except OSError as exc:
                print("refused", exc)
        socket.getaddrinfo("localhost", 0)  # loopback stays allowed
        """
    )
    done, attempts = run(["-c", script])
    assert done.returncode == 0 and done.stdout.count("refused") == 3, done.stderr[-2000:]
    assert [a["call"] for a in attempts] == ["create_connection", "connect", "getaddrinfo"]
    assert "example.com" in attempts[0]["target"] and "192.0.2.1" in attempts[1]["target"]


def _assert_settings_inside_data_folder(home: Path, data: Path) -> None:
    settings = data / "ultralytics" / "Ultralytics" / "settings.json"
    assert settings.is_file(), sorted(str(p) for p in data.rglob("*"))[:20]
    values = json.loads(settings.read_text())
    assert all(values.get(key, False) is False for key in NETWORK_SETTINGS), values
    assert not (home / ".config" / "Ultralytics").exists()
    assert not any("Arial" in p.name for p in data.rglob("*"))


@pytest.mark.skipif(not (MODELS_DIR / "detector").is_dir(), reason="no shipped detector weights in assets/models/detector")
def test_analyze_attempts_no_connection(traced, make_video):
    run, home, data = traced
    video = make_video("offline.mp4", n_frames=50, size=(160, 128))
    out = data.parent / "case"
    done, attempts = run(["-m", "app.cli", "analyze", str(video), "--out", str(out), "--sample-fps", "1", "--quiet"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert attempts == [], attempts  # not one connection or name lookup, even a refused and swallowed one
    from analysis.results import CaseResult

    case = CaseResult.load(out)
    assert {"detection", "phase"} <= set(case.stages) and case.sampling.frames_analysed == 2
    _assert_settings_inside_data_folder(home, data)


def _tiny_yolo_dataset(root: Path) -> Path:
    """4 synthetic 64x64 images with one bright box each, as an ultralytics data.yaml."""
    import numpy as np

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for i in range(4 if split == "train" else 2):
            img = rng.integers(0, 60, (64, 64, 3), dtype=np.uint8)
            x, y = 8 + 6 * i, 10 + 4 * i
            img[y:y + 20, x:x + 24] = 230
            Image.fromarray(img).save(root / "images" / split / f"{i}.jpg")
            (root / "labels" / split / f"{i}.txt").write_text(f"0 {(x + 12) / 64:.4f} {(y + 10) / 64:.4f} {24 / 64:.4f} {20 / 64:.4f}\n")
    yaml = root / "data.yaml"
    yaml.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n  0: Grasper\n")
    return yaml


@pytest.mark.slow
def test_one_epoch_of_detector_training_attempts_no_connection(traced, tmp_path):
    run, home, data = traced
    yaml = _tiny_yolo_dataset(tmp_path / "tiny")
    runs = tmp_path / "runs"
    done, attempts = run(["-m", "app.cli", "train-detector", "--data", str(yaml), "--out", str(runs), "--epochs", "1",
                          "--imgsz", "64", "--batch", "2", "--device", "cpu"], timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert attempts == [], attempts
    assert (runs / "train" / "weights" / "last.pt").is_file()
    _assert_settings_inside_data_folder(home, data)
