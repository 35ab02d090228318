"""Evaluating the tracker: our detector + tracker on a video against box-track ground truth.

Ground truth comes as the m2cai16-track JSON (`{fps, frames: [{boxes: [{label, xyxy}]}]}`, one
frame per analysed frame, ids implicit: one track per label) or as a MOTChallenge `gt.txt`
(`frame, id, x, y, w, h, conf, class, visibility`, 1-based frames; rows with conf 0 are ignored
boxes, as MOTChallenge flags them). Predictions can also be read from
a MOTChallenge file instead of being computed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from metrics.tracking import FrameTracks, evaluate_tracking
from models.detector import Detector
from models.tracker import BoxPredictor, Tracker


def read_track_json(path: str | Path, class_names: list[str]) -> tuple[list[FrameTracks], list[int], float]:
    """m2cai16-track JSON -> per-frame ground truth (one id per label), class ids involved, fps."""
    spec = json.loads(Path(path).read_text())
    frames, classes = [], set()
    for frame in spec["frames"]:
        ids, boxes = [], []
        for box in frame["boxes"]:
            cid = class_names.index(box["label"]) if box["label"] in class_names else None
            if cid is None:
                raise ValueError(f"label {box['label']!r} in {str(path)!r} is not one of {class_names}")
            classes.add(cid)
            ids.append(cid + 1)
            boxes.append(box["xyxy"])
        frames.append(FrameTracks(np.array(ids, int), np.array(boxes, float).reshape(-1, 4)))
    return frames, sorted(classes), float(spec.get("fps", 1.0))


def read_mot(path: str | Path, num_frames: int | None = None, ground_truth: bool = False) -> list[FrameTracks]:
    """MOTChallenge txt (gt or results) -> per-frame ids and xyxy boxes (frames are 1-based).

    `ground_truth`: the 7th column is the MOT flag, and rows flagged 0 become ignored boxes
    (in a results file that column is a confidence, so it is not read).
    """
    path = Path(path)
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{str(path)!r} is not a MOTChallenge file: {exc}") from exc
    if rows.size and rows.shape[1] < 6:
        raise ValueError(f"{str(path)!r} is not a MOTChallenge file (needs >= 6 columns, got {rows.shape[1]})")
    n = num_frames or (int(rows[:, 0].max()) if rows.size else 0)
    flags = ground_truth and rows.size > 0 and rows.shape[1] >= 7
    out = []
    for f in range(1, n + 1):
        r = rows[rows[:, 0] == f] if rows.size else np.zeros((0, 6))
        xyxy = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5]], axis=1) if len(r) else np.zeros((0, 4))
        out.append(FrameTracks(r[:, 1].astype(int), xyxy, ignore=(r[:, 6] == 0) if flags else None))
    return out


def write_mot(path: str | Path, frames: list[FrameTracks]) -> None:
    """Per-frame tracks -> MOTChallenge txt."""
    lines = []
    for f, ft in enumerate(frames, start=1):
        for tid, (x1, y1, x2, y2) in zip(ft.ids, ft.xyxy):
            lines.append(f"{f},{int(tid)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1")
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""))


def track_video(
    video: str | Path, detector: Detector, tracker: Tracker, classes: list[int] | None = None, detect_every: int = 1
) -> tuple[list[FrameTracks], float]:
    """Run detector + tracker on every frame of a video; optionally keep only some classes.

    `detect_every=k`: the detector and tracker run on every k-th frame only, and the frames between
    get the tracks' boxes moved on at their velocity (as the detection stage does).
    """
    from video import FrameReader

    if isinstance(detect_every, bool) or not isinstance(detect_every, int) or detect_every < 1:
        raise ValueError(f"detect_every must be a positive integer, got {detect_every!r}")
    reader = FrameReader(video, sample_fps="all")
    tracker.reset()
    predictor = BoxPredictor((reader.info.width, reader.info.height), max_gap_s=2.5 * detect_every / reader.info.fps)
    out = []
    for n, frame in enumerate(reader):
        if n % detect_every:
            det = predictor.predict(frame.timestamp_s, frame.index)
        else:
            det = detector([frame.rgb], [frame.index])[0]
            det = tracker(det, np.ascontiguousarray(frame.rgb[..., ::-1]))
            predictor.observe(det, frame.timestamp_s)
        if classes is not None:
            det = det[np.isin(det.class_id, classes)]
        out.append(FrameTracks(det.tracker_id, det.xyxy))
    return out, reader.info.fps


def evaluate_tracker(
    video: str | Path,
    ground_truth: str | Path,
    tracker: str = "bytetrack",
    weights: str | Path | None = None,
    predictions_out: str | Path | None = None,
    iou_threshold: float = 0.5,
    conf: float = 0.25,
    detect_every: int = 1,
    backend: str | None = None,
) -> dict:
    """MOTA, IDF1 and id switches of detector + tracker on `video` against `ground_truth`.

    `detect_every`: detector on every k-th frame, boxes predicted between; `backend`: the detector's.
    """
    detector = Detector(weights, conf=min(conf, 0.1), backend=backend)
    gt_path = Path(ground_truth)
    if gt_path.suffix == ".json":
        gt, classes, _ = read_track_json(gt_path, detector.class_names)
        # Ids in the JSON are implicit (one per label), so predictions are scored on those classes only.
        keep: list[int] | None = classes
    else:
        gt, keep = read_mot(gt_path, ground_truth=True), None
    from video import probe

    info = probe(video)
    pred, fps = track_video(video, detector, Tracker(tracker, frame_rate=info.fps / detect_every), keep, detect_every)
    if len(pred) < len(gt):
        raise ValueError(f"video {str(video)!r} has {len(pred)} frames but the ground truth has {len(gt)}")
    pred = pred[: len(gt)]  # ground truth may cover only the start of the video
    if predictions_out:
        write_mot(predictions_out, pred)
    report = evaluate_tracking(gt, pred, iou_threshold)
    return {
        "task": "tracking",
        "data": {"video": Path(video).name, "ground_truth": gt_path.name, "frames": len(gt), "fps": fps},
        "tracker": tracker,
        "model": {"weights": detector.entry.weights.name, "name": detector.entry.name, "backend": detector.backend},
        "detect_every": detect_every,
        "protocol": f"CLEAR-MOT, IDF1 (IoU {iou_threshold}) and HOTA by TrackEval; every frame of the video"
                    + (f" (detector on every {detect_every}th, boxes predicted between); " if detect_every > 1 else "; ")
                    + ("predictions restricted to the ground truth's classes" if keep is not None else "all predictions"),
        "metrics": report.to_dict(),
    }
