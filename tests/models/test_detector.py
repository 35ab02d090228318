"""The shipped detector: loads offline, names come from metadata, finds instruments in real clips."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from models.registry import MODELS_DIR, ModelNotFoundError, resolve_model
from tests.conftest import REPO, shared_path

pytestmark = pytest.mark.skipif(not (MODELS_DIR / "detector").is_dir(), reason="no shipped detector weights in assets/models/detector")


NO_NETWORK = """
import socket
def refuse(*a, **k):
    raise AssertionError(f"network access attempted: {a[:2]}")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
socket.create_connection = refuse
"""


def _run_offline(script: str, env: dict[str, str]) -> None:
    """Run `script` in a fresh interpreter whose sockets refuse every connection; it must end printing "ok"."""
    out = subprocess.run([sys.executable, "-c", NO_NETWORK + textwrap.dedent(script)], cwd=REPO, capture_output=True,
                         text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("ok")


@pytest.fixture(scope="module")
def detector():
    from models.detector import Detector

    return Detector()


def test_load_and_predict_open_no_socket():
    """Loading ultralytics, the weights and predicting must not touch the network at all."""
    _run_offline(
        """
        import numpy as np
        from models.detector import Detector
        from models.tracker import Tracker
        d = Detector(backend="torch")  # the ultralytics path (OpenVINO never imports it)
        dets = d([np.zeros((240, 320, 3), np.uint8)] * 2)
        Tracker("botsort")(dets[0], np.zeros((240, 320, 3), np.uint8))
        from ultralytics.utils import SETTINGS
        assert SETTINGS["sync"] is False, SETTINGS["sync"]
        print("ok")
        """,
        env={"PATH": "/usr/bin:/bin", "HOME": str(REPO / "runs" / "test-home")},
    )


def test_class_names_come_from_metadata(detector):
    meta = json.loads((MODELS_DIR / "detector" / "metadata.json").read_text())
    assert detector.class_names == meta["classes"]
    assert detector.imgsz == meta["input_size"]


def test_predict_returns_detections_and_features(detector):
    rgb = np.random.default_rng(0).integers(0, 255, (324, 578, 3), dtype=np.uint8)
    dets, feats = detector.predict([rgb, rgb], [3, 4])
    assert len(dets) == 2 and feats.shape[0] == 2 and feats.ndim == 2
    for d, i in zip(dets, (3, 4)):
        assert (d.frame_index == i).all()
        assert (d.xyxy[:, 2] <= 578 + 1).all()


def test_user_weights_path_and_bad_path(tmp_path):
    entry = resolve_model(MODELS_DIR / "detector" / "weights.pt")
    assert entry.classes  # metadata beside a bare weights file is found
    with pytest.raises(ModelNotFoundError, match="no model at 'nowhere.pt'"):
        resolve_model("nowhere.pt")
    (tmp_path / "a.pt").write_bytes(b"x")
    (tmp_path / "b.pt").write_bytes(b"x")
    with pytest.raises(ModelNotFoundError, match="exactly one weights file"):
        resolve_model(tmp_path)


# The shared clips, each centred on an action triplet, and the instrument that triplet names.
CLIP_TOOLS = {
    "0.975__group_20__VID05_196_and_VID18_166_b.mp4": "Grasper",  # grasper, retract, omentum
    "0.975__group_22__VID05_1858_and_VID08_1331_a.mp4": "Bipolar",  # bipolar, coagulate, abdominal wall
    "0.975__group_57__VID22_372_and_VID26_693_b.mp4": "Hook",  # hook, dissect, cystic artery
    "0.975__group_59__VID25_324_and_VID43_743_a.mp4": "Hook",  # hook, dissect, cystic plate
    "0.975__group_63__VID15_772_and_VID47_1133_b.mp4": "Hook",  # hook, retract, gallbladder
    "0.985__group_19__VID15_1911_and_VID18_1261_a.mp4": "Grasper",  # grasper, retract, liver
}
TROCAR_VIEW = pytest.mark.xfail(
    strict=True,
    reason="filmed from inside a trocar tube (the quality stage flags 31 of 32 frames out-of-body): the bipolar "
    "is a few pixels seen through the tube, and the detector's best Bipolar score over all 800 frames is 0.22",
)


@pytest.mark.parametrize(
    "clip_name", [pytest.param(n, marks=TROCAR_VIEW) if "group_22" in n else n for n in CLIP_TOOLS]
)
def test_finds_the_clip_instrument_in_real_clip(detector, clip_name):
    """At 1 fps, the instrument the clip's triplet names is found with confidence >= 0.5 at least once."""
    from video import FrameReader

    tool = CLIP_TOOLS[clip_name]
    frames = [f.rgb for f in FrameReader(shared_path("cholec-clips", clip_name), sample_fps=1.0)]
    best = 0.0
    for i in range(0, len(frames), 8):
        for det in detector(frames[i : i + 8]):
            hits = det.confidence[det.class_id == detector.class_names.index(tool)]
            best = max(best, float(hits.max()) if len(hits) else 0.0)
    assert best >= 0.5, f"{tool} not found with confidence >= 0.5 in {clip_name} (best {best:.2f})"


def test_same_frames_twice_take_one_forward_pass(detector, monkeypatch):
    frames = [np.zeros((96, 128, 3), np.uint8), np.full((96, 128, 3), 90, np.uint8)]
    dets, feats = detector.predict(frames, [1, 2])
    calls = []
    monkeypatch.setattr(detector.model, "predict", lambda *a, **k: calls.append(1))
    again, feats2 = detector.predict(list(frames), [5, 6])
    assert calls == [] and feats2 is feats
    assert [int(d.frame_index[0]) if len(d) else 5 + i for i, d in enumerate(again)] == [5, 6]
    with pytest.raises(TypeError):  # new arrays (even equal ones) run the model again
        detector.predict([f.copy() for f in frames])


# -- inference backends (issue 12): OpenVINO when installed, torch as the fallback --------------------
openvino_only = pytest.mark.skipif(not __import__("importlib").util.find_spec("openvino"), reason="openvino not installed")


def test_bad_backend_is_refused():
    from models.detector import Detector

    with pytest.raises(ValueError, match="detector backend must be one of .*, got 'tpu'"):
        Detector(backend="tpu")


@openvino_only
def test_openvino_boxes_match_torch_and_features_fall_back_to_torch():
    from models._openvino import OpenVINOBoxes
    from models.detector import Detector

    frames = [f.rgb for f in __import__("video").FrameReader(shared_path("cholec-clips", next(iter(CLIP_TOOLS))), sample_fps=4.0)][:8]
    fast, slow = Detector(conf=0.01, backend="openvino"), Detector(conf=0.01, backend="torch")  # no box near a threshold
    assert fast.backend == "openvino" and slow.backend == "torch" and slow.precision == "f32"
    exact = OpenVINOBoxes(_export_dir(fast), fast.imgsz, 0.01, fast.iou, fast.max_det, precision="f32")
    # In float32 our letterbox + NMS port gives torch's boxes, in the same order, at the same confidences ...
    for (xyxy, conf, cls), b in zip(exact(frames) + exact(frames[:3] + [frames[3][:400, :700]]), slow(frames) + slow(frames[:3] + [frames[3][:400, :700]])):
        assert cls.tolist() == b.class_id.tolist()  # (a batch of mixed shapes is padded square, as ultralytics does)
        assert np.abs(conf - b.confidence).max(initial=0) < 1e-3 and np.abs(xyxy - b.xyxy).max(initial=0) < 0.05
    # ... and at the CPU's default precision (bf16 where it has it) the same tools, at nearly the same scores.
    for a, b in zip(fast(frames), slow(frames)):
        assert np.abs(fast.presence(a) - slow.presence(b)).max() < 0.03
        a, b = a[a.confidence > 0.3], b[b.confidence > 0.3]
        assert a.class_id.tolist() == b.class_id.tolist()
        assert np.abs(a.xyxy - b.xyxy).max(initial=0) < 2.0
    dets, feats = fast.predict(frames)  # pooled features exist only in torch: it switches, and says so
    assert feats.shape == (8, slow.predict(frames)[1].shape[1]) and fast.backend == "torch"
    assert "pooled features" in fast.backend_note


def _export_dir(detector):
    from models._openvino import exported_model_dir

    return exported_model_dir(detector.entry.weights, detector.weights_sha256, detector.imgsz)


@openvino_only
def test_openvino_export_is_offline_keyed_by_sha_and_sends_no_telemetry(tmp_path):
    """A first export into an empty data folder: no socket, no pip, nothing written to ~/intel."""
    _run_offline(
        """
        import subprocess, sys
        import torch  # so the export runs in this guarded process, not in a child
        import numpy as np
        from models.detector import Detector
        d = Detector()
        assert d.backend == "openvino", d.backend_note
        d([np.zeros((240, 320, 3), np.uint8)] * 3)
        assert sys.modules.get("openvino_telemetry") is None
        print("ok")
        """,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home"), "SURGLENS_DATA_DIR": str(tmp_path / "data")},
    )
    sha = json.loads((MODELS_DIR / "detector" / "metadata.json").read_text())["weights_sha256"]
    cached = list((tmp_path / "data" / "cache" / "openvino").iterdir())
    assert [p.name for p in cached] == [f"{sha[:16]}-320_openvino_model"] and list(cached[0].glob("*.xml"))
    assert not (tmp_path / "home" / "intel").exists()


@openvino_only
def test_openvino_inference_never_imports_torch(tmp_path):
    """The OpenVINO path detects without ultralytics or torch; a missing export is made by a child process."""
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from models.detector import Detector
        d = Detector(backend="openvino")
        dets = d([np.full((240, 320, 3), 90, np.uint8)] * 2)
        assert len(dets) == 2 and d.class_names[0] == "Grasper", d.class_names
        leaked = [m for m in ("torch", "ultralytics") if m in sys.modules]
        assert not leaked, leaked
        print("ok")
        """)
    env = {"PATH": "/usr/bin:/bin", "SURGLENS_DATA_DIR": str(tmp_path / "data")}  # nothing cached: a child exports
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
    assert len(list((tmp_path / "data" / "cache" / "openvino").glob("*_openvino_model/*.xml"))) == 1


def test_an_export_child_never_starts_another(monkeypatch):
    from models._openvino import CHILD_ENV, run_child

    monkeypatch.setenv(CHILD_ENV, "1")
    with pytest.raises(RuntimeError, match="a model-export child may not start another"):
        run_child(["convert-anatomy", "weights.pt"])


def test_openvino_cache_rejects_bad_sizes():
    from models._openvino import exported_model_dir

    with pytest.raises(ValueError, match="imgsz must be a positive multiple of 32, got 300"):
        exported_model_dir(MODELS_DIR / "detector" / "weights.pt", "0" * 64, 300)


def test_int8_export_is_never_made_implicitly(tmp_path, monkeypatch):
    from models._openvino import exported_model_dir

    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SURGLENS_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(FileNotFoundError, match="no INT8 export of .*surglens detector-backends"):
        exported_model_dir(MODELS_DIR / "detector" / "weights.pt", "f" * 64, 320, int8=True)
