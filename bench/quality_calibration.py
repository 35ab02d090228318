"""Calibrate the thresholds of `video.quality` on real footage and print the figures.

Data: clear laparoscopic frames (../shared/data/cholec-clips at 1 fps), smoky frames
(../shared/data/smoke-clips, every frame; labelled smoky per clip, not per frame), blurred copies
of the clear frames (Gaussian sigma 2.5 px at native size), further in-body frames (m2cai16,
CholecT50) and out-of-body stand-ins (the natural photos shipped inside installed packages).

Rules. "Good views" are the clear and in-body frames (cholec-clips, m2cai16, CholecT50) whose
out_of_body_score is <= 0.5; this leaves out the trocar view and the black tail that the clear
clips also contain. `max_haze` and `min_sharpness` maximise Youden's J (TPR - FPR) between the
good cholec frames and the smoky / blurred ones (for haze, the 95th percentile of the good
frames is printed as a more cautious alternative); `min_brightness` and the exposure limits are the 1st/99th
percentiles of the good views; `max_out_of_body_score` stays at 0.5 and the flagged share of
each group is reported.

    .venv/bin/python -m bench.quality_calibration [--out runs/bench/quality_calibration.json]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from video import FrameReader
from video.quality import FrameQuality, measure_quality

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent.joinpath(*parts)
    return path if path.exists() else None


def _natural_images() -> list[Path]:
    candidates = [
        _package_file("ultralytics", "assets", "bus.jpg"),
        _package_file("ultralytics", "assets", "zidane.jpg"),
        _package_file("matplotlib", "mpl-data", "sample_data", "grace_hopper.jpg"),
        _package_file("sklearn", "datasets", "images", "flower.jpg"),
        _package_file("sklearn", "datasets", "images", "china.jpg"),
    ]
    return [p for p in candidates if p is not None]


def _video_frames(pattern: str, sample_fps: float | str) -> list[np.ndarray]:
    return [f.rgb for path in sorted(SHARED.glob(pattern)) for f in FrameReader(path, sample_fps=sample_fps)]


def _images(paths: list[Path]) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def _youden(negatives: np.ndarray, positives: np.ndarray, higher_is_positive: bool) -> dict[str, float]:
    """Threshold maximising TPR - FPR, with the ROC AUC."""
    sign = 1.0 if higher_is_positive else -1.0
    neg, pos = sign * negatives, sign * positives
    best = (-1.0, 0.0, 0.0, 0.0)
    for t in np.unique(np.concatenate([neg, pos])):
        tpr, fpr = float((pos > t).mean()), float((neg > t).mean())
        if tpr - fpr > best[0]:
            best = (tpr - fpr, float(t), tpr, fpr)
    auc = float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    return {"threshold": sign * best[1], "tpr": best[2], "fpr": best[3], "auc": auc}


def _column(qs: list[FrameQuality], name: str) -> np.ndarray:
    return np.array([getattr(q, name) for q in qs], dtype=float)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "quality_calibration.json")
    args = parser.parse_args()
    if not SHARED.exists():
        sys.exit(f"real data not found at {SHARED}")

    clear_frames = _video_frames("cholec-clips/*.mp4", 1.0)
    groups = {
        "clear (cholec-clips, 1 fps)": [measure_quality(f) for f in clear_frames],
        "smoky (smoke-clips, all)": [measure_quality(f) for f in _video_frames("smoke-clips/*.avi", "all")],
        "blurred clear (sigma 2.5)": [measure_quality(cv2.GaussianBlur(f, (0, 0), 2.5)) for f in clear_frames],
        "in-body m2cai16 (1/50)": [measure_quality(f) for f in _images(sorted(SHARED.glob("m2cai16-tool-locations/JPEGImages/*.jpg"))[::50])],
        "in-body CholecT50 (1/20)": [measure_quality(f) for f in _images(sorted(SHARED.glob("cholect50-val/videos/*/*.jpg"))[::20])],
        "out-of-body stand-ins (natural photos)": [measure_quality(f) for f in _images(_natural_images())],
    }
    clear, smoky, blurred = (groups[k] for k in list(groups)[:3])
    good = [q for name, qs in groups.items() if "clear" in name and "blurred" not in name or "in-body" in name for q in qs]
    good = [q for q in good if q.out_of_body_score <= 0.5]
    good_clear = [q for q in clear if q.out_of_body_score <= 0.5]
    haze = _youden(_column(good_clear, "haze"), _column(smoky, "haze"), higher_is_positive=True)
    p95 = float(np.percentile(_column(good_clear, "haze"), 95))
    haze.update(p95=p95, p95_tpr=float((_column(smoky, "haze") > p95).mean()))
    sharp = _youden(_column(clear, "blur"), _column(blurred, "blur"), higher_is_positive=False)
    thresholds = {
        "min_sharpness": round(sharp["threshold"], 1),
        "max_haze": round(haze["threshold"], 3),
        "min_brightness": float(np.floor(np.percentile(_column(good, "brightness"), 1) * 100) / 100),
        "max_overexposed_fraction": float(np.ceil(np.percentile(_column(good, "overexposed_fraction"), 99) * 100) / 100),
        "max_underexposed_fraction": float(np.ceil(np.percentile(_column(good, "underexposed_fraction"), 99) * 100) / 100),
        "max_out_of_body_score": 0.5,
    }
    summary = {
        name: {m: [round(float(np.percentile(_column(qs, m), p)), 4) for p in (5, 50, 95)] for m in FrameQuality.__dataclass_fields__}
        for name, qs in groups.items()
    }
    out_of_body = {name: round(float((_column(qs, "out_of_body_score") > 0.5).mean()), 3) for name, qs in groups.items()}
    result = {"thresholds": thresholds, "haze_smoky_vs_clear": haze, "blur_blurred_vs_clear": sharp,
              "out_of_body_flagged_share": out_of_body, "percentiles_5_50_95": summary,
              "frames": {name: len(qs) for name, qs in groups.items()}, "good_views": len(good)}

    print(f"frames: {result['frames']}")
    print(f"haze  smoky vs good clear: AUC {haze['auc']:.3f}; max_haze {thresholds['max_haze']} "
          f"flags {haze['tpr']:.0%} smoky, {haze['fpr']:.0%} clear "
          f"(95th pct of clear {haze['p95']:.3f}: {haze['p95_tpr']:.0%} smoky, 5% clear)")
    print(f"blur  blurred vs clear: AUC {sharp['auc']:.3f}; min_sharpness {thresholds['min_sharpness']} "
          f"flags {sharp['tpr']:.0%} blurred, {sharp['fpr']:.0%} clear")
    print(f"exposure (1st/99th pct of {len(good)} good views): {({k: v for k, v in thresholds.items() if 'exposed' in k or 'bright' in k})}")
    print(f"out_of_body > 0.5 share: {out_of_body}")
    for name, measures in summary.items():
        print(f"  {name}: " + ", ".join(f"{m} {v[0]:g}/{v[1]:g}/{v[2]:g}" for m, v in measures.items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
