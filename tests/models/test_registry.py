"""Model folders: shipped names are never shadowed, and weights are checked against their SHA-256 before loading."""
import json
import pickle
import shutil

import pytest

from models import registry
from models.registry import (
    MODELS_DIR, SHA256_KEY, WeightsIntegrityError, resolve_model, verify_weights, weights_sha256, write_metadata,
)

needs_detector = pytest.mark.skipif(not (MODELS_DIR / "detector").is_dir(), reason="no shipped detector in assets/models")


class _Payload:
    """Unpickling this creates a file: stands in for code hidden in a replaced .pt."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _copy_detector(dest):
    shutil.copytree(MODELS_DIR / "detector", dest)
    return dest


@needs_detector
def test_shipped_detector_records_and_matches_its_sha256():
    entry = resolve_model("detector")
    assert entry.shipped and entry.metadata[SHA256_KEY] == weights_sha256(entry.weights)
    assert verify_weights(entry, required=True) is entry


@needs_detector
def test_tampered_copy_is_refused_before_it_is_unpickled(tmp_path):
    from models.detector import Detector

    model = _copy_detector(tmp_path / "model")
    fired = tmp_path / "payload-ran"
    live = tmp_path / "control-ran"
    pickle.loads(pickle.dumps(_Payload(live)))
    assert live.exists()  # control: loading this pickle does run code
    (model / "weights.pt").write_bytes(pickle.dumps(_Payload(fired)))
    with pytest.raises(WeightsIntegrityError, match=r"refusing to load '.*weights\.pt': its SHA-256 is [0-9a-f]{64}, but metadata\.json records"):
        Detector(model)
    with pytest.raises(WeightsIntegrityError, match="changed or replaced"):
        Detector(model / "weights.pt")  # a bare weights file with its metadata beside it: checked too
    assert not fired.exists()


@needs_detector
def test_one_flipped_byte_is_a_mismatch(tmp_path):
    model = _copy_detector(tmp_path / "model")
    data = bytearray((model / "weights.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model / "weights.pt").write_bytes(bytes(data))
    with pytest.raises(WeightsIntegrityError, match="but metadata.json records '[0-9a-f]{64}'"):
        verify_weights(resolve_model(model))


@needs_detector
def test_shipped_weights_without_a_recorded_sha256_are_refused(tmp_path, monkeypatch):
    from models.detector import Detector

    root = tmp_path / "assets-models"
    model = _copy_detector(root / "detector")
    meta = json.loads((model / "metadata.json").read_text())
    del meta[SHA256_KEY]
    (model / "metadata.json").write_text(json.dumps(meta))
    monkeypatch.setattr(registry, "MODELS_DIR", root)
    with pytest.raises(WeightsIntegrityError, match=f"records no {SHA256_KEY}"):
        Detector()


@needs_detector
def test_a_folder_named_like_a_shipped_model_in_the_working_directory_is_not_used(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "detector").mkdir()
    (tmp_path / "detector" / "weights.pt").write_bytes(b"not ours")
    assert resolve_model("detector").weights == MODELS_DIR / "detector" / "weights.pt"
    assert resolve_model("./detector").weights.resolve() == tmp_path / "detector" / "weights.pt"  # a path: the user's


def test_user_weights_without_metadata_are_the_users_choice(tmp_path):
    (tmp_path / "best.pt").write_bytes(b"user weights")
    entry = resolve_model(tmp_path / "best.pt")
    assert not entry.shipped and verify_weights(entry) is entry
    with pytest.raises(WeightsIntegrityError, match="records no"):
        verify_weights(entry, required=True)


def test_write_metadata_records_the_weights_sha256(tmp_path):
    (tmp_path / "weights.pt").write_bytes(b"abc")
    write_metadata(tmp_path, {"name": "m", SHA256_KEY: "stale"})
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta[SHA256_KEY] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert verify_weights(resolve_model(tmp_path), required=True).metadata["name"] == "m"
    (tmp_path / "weights.pt").write_bytes(b"abd")
    with pytest.raises(WeightsIntegrityError):
        verify_weights(resolve_model(tmp_path))
