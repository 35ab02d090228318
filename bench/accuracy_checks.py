"""Checks that a speed-up did not change results, and what importing torch costs; printed as JSON, never asserted in tests.

  clips      the shipped phase model's per-second strict accuracy on the shared clips (their source operations are
             outside its fitting), with the pipeline's reference-frame decoding (skip_frame NONREF) and with every frame
             decoded (what the card measured)
  anatomy    the shipped anatomy model on OpenVINO against torch on Endoscapes frames: share of identical label
             pixels and the largest CVS-probability difference (needs the `fast` extra)
  imports    resident memory added by importing torch, and ultralytics, in a fresh interpreter

    .venv/bin/python -m bench.accuracy_checks [--parts clips,anatomy,imports] [--frames 30]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.analyze import REPO

SHARED = REPO.parent / "shared" / "data"
PARTS = ("clips", "anatomy", "imports")


def clip_accuracy(skip_nonref: bool) -> dict:
    """Mean and per-clip strict accuracy of the shipped phase model on the shared clips."""
    import numpy as np

    import video.reader
    from models.detector import Detector
    from models.phase import load_phase_model
    from models.phase.sequences import read_label_sequences
    from models.phase.temporal_train import CLIP_SECONDS, clip_evidence, clip_source, score

    model, detector = load_phase_model("phase"), Detector()
    labels = {s.number: s for s in read_label_sequences(SHARED / "cholec80-labels")}
    original = video.reader.FrameReader.__init__

    def init(self, *args, **kwargs):  # clip_evidence reads with the defaults: choose the decoding here
        kwargs.setdefault("skip_nonref", None if skip_nonref else False)
        original(self, *args, **kwargs)

    video.reader.FrameReader.__init__ = init  # type: ignore[method-assign]
    try:
        per_clip = {}
        for path in sorted((SHARED / "cholec-clips").glob("*.mp4")):
            number, centre = clip_source(path)
            if number not in labels:
                continue
            evidence, _, _ = clip_evidence(path, detector)
            start = max(centre - CLIP_SECONDS // 2, 0)
            truth = labels[number].phase[start:start + len(evidence)]
            probs = model.predict(evidence, model.choose_variant(evidence), None).probs
            per_clip[path.name] = round(float(score(truth, probs.argmax(1), probs)["strict"].accuracy), 4)
    finally:
        video.reader.FrameReader.__init__ = original  # type: ignore[method-assign]
    return {"mean": round(float(np.mean(list(per_clip.values()))), 4), "per_clip": per_clip}


def anatomy_agreement(frames: int) -> dict:
    """OpenVINO against torch on the first `frames` Endoscapes frames (sorted by name)."""
    import numpy as np
    from PIL import Image

    from models.anatomy.model import AnatomyModel

    paths = sorted((SHARED / "endoscapes-seg50").rglob("*.jpg"))[:frames]
    images = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    fast, slow = AnatomyModel(backend="openvino"), AnatomyModel(backend="torch")
    same, cvs = [], []
    for a, b in zip(fast(images), slow(images)):
        same.append(float((a.labels == b.labels).mean()))
        cvs.append(max(abs(a.cvs[k] - b.cvs[k]) for k in a.cvs))
    return {"frames": len(images), "identical_label_pixels_min": min(same), "identical_label_pixels_mean": float(np.mean(same)),
            "max_cvs_difference": max(cvs)}


def import_cost() -> dict:
    """MiB of resident memory added by `import torch` and by `import ultralytics`, each in a fresh interpreter."""
    out = {}
    for module in ("torch", "ultralytics"):
        code = (f"import psutil; p = psutil.Process(); b = p.memory_info().rss; import {module}; "
                "print((p.memory_info().rss - b) / 2**20)")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
        out[module] = round(float(done.stdout.strip().splitlines()[-1]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    parser.add_argument("--frames", type=int, default=30, help="Endoscapes frames for the anatomy check")
    args = parser.parse_args(argv)
    parts = args.parts.split(",")
    result: dict = {}
    if "clips" in parts:
        result["clips"] = {"reference_frames": clip_accuracy(True), "every_frame": clip_accuracy(False)}
    if "anatomy" in parts:
        result["anatomy_openvino_vs_torch"] = anatomy_agreement(args.frames)
    if "imports" in parts:
        result["import_mib"] = import_cost()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
