"""The anatomy segmenter and CVS head: dataset reader, features, a tiny train -> export -> eval round trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from models.anatomy.cvs import MASK_FEATURES, CVSHead, mask_features
from models.anatomy.data import CLASSES, IGNORE, load_mask, read_split
from tests.conftest import REPO

DETECTOR = REPO / "assets" / "models" / "detector" / "weights.pt"


def _scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame with a coloured block per class and its mask (plus an unannotated strip)."""
    img = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    colours = [(200, 80, 80), (80, 200, 80), (80, 80, 200), (200, 200, 80), (200, 80, 200), (160, 160, 160)]
    for k, colour in enumerate(colours, start=1):
        y, x = int(rng.integers(0, h - 16)), int(rng.integers(0, w - 16))
        img[y:y + 16, x:x + 16] = colour
        mask[y:y + 16, x:x + 16] = k
    mask[:, :4] = IGNORE
    return img, mask


@pytest.fixture
def tiny_endoscapes(tmp_path):
    """A folder in the endoscapes-seg50 layout: 8 train frames from 4 videos, 3 val frames from 2."""
    root = tmp_path / "seg"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    labels: dict[str, dict] = {"train": {}, "val": {}}
    for split, videos, per in (("train", (1, 2, 3, 4), 2), ("val", (8, 9), 2)):
        for v in videos:
            for i in range(per):
                if split == "val" and v == 9 and i == 1:
                    continue
                stem = f"{v}_{i:05d}"
                img, mask = _scene(rng, 96, 160)
                Image.fromarray(img).save(root / "images" / f"{stem}.jpg")
                Image.fromarray(mask).save(root / "masks" / f"{stem}.png")
                cvs = [float(rng.choice([0, 1 / 3, 2 / 3, 1])) for _ in range(3)]
                labels[split][stem] = {"file_name": f"{stem}.jpg", "video_id": v, "cvs_criteria": cvs, "width": 160, "height": 96}
    labels["train"]["1_00000"]["cvs_criteria"] = [1.0, 1.0, 1.0]
    labels["train"]["2_00000"]["cvs_criteria"] = [0.0, 0.0, 0.0]
    (root / "labels.json").write_text(json.dumps(labels))
    return root


def test_read_split_and_truth(tiny_endoscapes):
    frames = read_split(tiny_endoscapes, "train")
    assert len(frames) == 8 and {f.video_id for f in frames} == {"1", "2", "3", "4"}
    assert frames[0].stem == "1_00000" and frames[0].cvs_truth == (True, True, True)
    assert all(f.mask is not None for f in frames)
    with pytest.raises(ValueError, match="'test'"):
        read_split(tiny_endoscapes, "test")


def test_stray_label_is_read_as_ignore(tmp_path):
    m = np.array([[0, 6, 7], [255, 3, 9]], np.uint8)
    Image.fromarray(m).save(tmp_path / "m.png")
    assert load_mask(tmp_path / "m.png").tolist() == [[0, 6, IGNORE], [IGNORE, 3, IGNORE]]


def test_mask_features_see_areas_and_contact():
    prob = np.zeros((len(CLASSES), 40, 40), np.float32)
    prob[0] = 1.0
    prob[:, 10:20, 10:20] = 0
    prob[5, 10:20, 10:20] = 1.0  # gallbladder
    prob[:, 20:24, 10:20] = 0
    prob[4, 20:24, 10:20] = 1.0  # cystic duct right below it: touching
    f = dict(zip(MASK_FEATURES, mask_features(prob)))
    assert len(f) == len(MASK_FEATURES)
    assert f["gallbladder_area"] == pytest.approx(100 / 1600)
    assert f["cystic_duct_present"] == 1.0 and f["cystic_artery_present"] == 0.0
    assert f["touch_cystic_duct_gallbladder"] > 0 and f["touch_cystic_artery_gallbladder"] == 0
    with pytest.raises(ValueError, match=r"\(3, 4, 4\)"):
        mask_features(np.zeros((3, 4, 4)))


def test_cvs_head_round_trips_through_tensors():
    head = CVSHead("mask", mean=np.zeros(2), scale=np.ones(2), coef=np.array([[1.0, 0], [0, 1.0], [0, 0]]),
                   intercept=np.zeros(3), C=0.1)
    again = CVSHead.from_state(head.to_state())
    p = again.predict_proba(np.array([[10.0, -10.0]]))
    assert p[0, 0] > 0.99 and p[0, 1] < 0.01 and p[0, 2] == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        again.predict_proba(np.zeros((1, 3)))


@pytest.mark.skipif(not DETECTOR.exists(), reason="the shipped detector (encoder init) is absent")
def test_train_export_and_eval_cli_on_a_tiny_folder(tiny_endoscapes, tmp_path, capsys):
    out, run = tmp_path / "model", tmp_path / "run"
    assert main(["train-anatomy", "--data", str(tiny_endoscapes), "--out", str(out), "--run", str(run),
                 "--epochs", "1", "--batch-size", "4", "--input-size", "64", "96", "--width", "16"]) == 0
    assert (out / "weights.pt").is_file() and (run / "last.pt").is_file() and (run / "best.pt").is_file()
    capsys.readouterr()
    report = tmp_path / "eval.json"
    assert main(["eval-anatomy", "--data", str(tiny_endoscapes), "--split", "val", "--model", str(out),
                 "--json", str(report), "--card"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == json.loads(report.read_text())
    assert result["frames"] == 3 and set(result["dice"]) == set(CLASSES) and set(result["iou"]) == set(CLASSES)
    assert result["mean_over"] == list(CLASSES[1:])
    assert result["mean_dice"] is None or 0 <= result["mean_dice"] <= 1
    assert set(result["cvs"]["ap"]) == {"C1", "C2", "C3"} and "map" in result["cvs"]
    assert "balanced_accuracy" in result["cvs"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["evaluation"]["endoscapes_seg50_val"]["mean_dice"] == result["mean_dice"]
    assert "not for clinical use" in (out / "MODEL_CARD.md").read_text()
    # Resuming a finished run trains no further and exports again.
    assert main(["train-anatomy", "--data", str(tiny_endoscapes), "--out", str(out), "--run", str(run),
                 "--epochs", "1", "--batch-size", "4", "--input-size", "64", "96", "--width", "16", "--resume"]) == 0


@pytest.mark.parametrize("argv,match", [
    (["eval-anatomy", "--data", "{tmp}/nowhere", "--split", "val", "--model", "{tmp}"], "nowhere"),
    (["eval-anatomy", "--data", "{data}", "--split", "bogus", "--model", "{tmp}"], "bogus"),
    (["eval-anatomy", "--data", "{data}", "--split", "val", "--model", "{tmp}"], "cannot read anatomy weights"),
])
def test_eval_cli_bad_input_is_one_line(tiny_endoscapes, tmp_path, capsys, argv, match):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "weights.pt").write_bytes(b"not a model")
    argv = [a.format(tmp=fake, data=tiny_endoscapes) for a in argv]
    argv = [str(tmp_path / "nowhere") if a.endswith("/nowhere") else a for a in argv]
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and match in err


def test_label_maps_upsample_the_logits_bilinearly_like_torch():
    """predict_labels' OpenCV upsampling gives torch's F.interpolate(bilinear, align_corners=False) labels."""
    import torch
    import torch.nn.functional as F

    from models.anatomy.train import predict_labels

    class Net(torch.nn.Module):  # fixed smooth logits at input size, any image
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.logits = F.interpolate(torch.randn(1, 7, 8, 14, generator=g), size=(64, 112), mode="bilinear")

        def forward_with_features(self, x):
            return self.logits, torch.zeros(1, 4)

    net = Net()
    image = np.zeros((120, 213, 3), np.uint8)  # not a multiple of the input size
    labels, prob, pooled = predict_labels(net, image, (64, 112))
    expected = F.interpolate(net.logits, size=(120, 213), mode="bilinear", align_corners=False).argmax(1)[0].numpy()
    assert labels.shape == (120, 213) and labels.dtype == np.uint8
    assert (labels == expected).mean() > 0.999  # float rounding may flip a near-tie pixel
    assert prob.shape == (7, 64, 112) and np.allclose(prob.sum(0), 1, atol=1e-5) and pooled.shape == (4,)


shipped_anatomy = pytest.mark.skipif(not (REPO / "assets" / "models" / "anatomy" / "weights.pt").is_file(),
                                     reason="needs the shipped anatomy model")


@shipped_anatomy
@pytest.mark.skipif(not __import__("importlib").util.find_spec("openvino"), reason="openvino not installed")
def test_openvino_anatomy_matches_torch(tmp_path, monkeypatch):
    from models.anatomy.model import AnatomyModel

    monkeypatch.setenv("SURGLENS_DATA_DIR", str(tmp_path))  # the converted model's cache
    rng = np.random.default_rng(0)
    frame = (rng.random((240, 427, 3)) * 255).astype(np.uint8)
    fast, slow = AnatomyModel(backend="openvino"), AnatomyModel(backend="torch")
    assert (fast.backend, slow.backend) == ("openvino", "torch")
    (a,), (b,) = fast([frame]), slow([frame])
    assert (a.labels == b.labels).mean() > 0.9999
    assert max(abs(a.cvs[k] - b.cvs[k]) for k in a.cvs) < 1e-4


@shipped_anatomy
def test_bad_anatomy_backend():
    from models.anatomy.model import AnatomyModel

    with pytest.raises(ValueError, match="anatomy backend must be one of .*, got 'tpu'"):
        AnatomyModel(backend="tpu")


@shipped_anatomy
@pytest.mark.skipif(not __import__("importlib").util.find_spec("openvino"), reason="openvino not installed")
def test_openvino_anatomy_never_imports_torch(tmp_path):
    """Settings and CVS head from a plain copy, the segmenter from its IR (made by a child when missing)."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys
        import numpy as np
        from models.anatomy.model import AnatomyModel
        m = AnatomyModel()
        frame = (np.random.default_rng(0).random((240, 427, 3)) * 255).astype(np.uint8)
        (r,) = m([frame])
        assert m.backend == "openvino" and r.labels.shape == (240, 427) and set(r.cvs) == {"C1", "C2", "C3"}, r.cvs
        assert "torch" not in sys.modules
        print("ok")
        """)
    env = {"PATH": "/usr/bin:/bin", "SURGLENS_DATA_DIR": str(tmp_path / "data")}  # nothing cached: children convert
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
    cache = tmp_path / "data" / "cache"
    assert len(list((cache / "openvino").glob("anatomy-*.xml"))) == 1 and len(list((cache / "states").glob("*.npz"))) == 1
