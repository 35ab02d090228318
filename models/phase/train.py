"""Training and evaluation of the phase model: feature caching, leave-one-video-out, export.

`train_phase_model` is the one entry point behind `surglens train-phase`: it encodes every frame
once (cached under runs/ by encoder identity), runs leave-one-video-out, fits the final model on
all videos and writes the model folder (weights.pt, metadata.json, MODEL_CARD.md).
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from metrics.phase import RELAXED_WINDOW_S, mean_over_videos, phase_metrics
from models.phase.data import PhaseVideo, read_phase_dataset
from models.phase.encoder import DetectorEncoder, encode_frames
from models.phase.hmm import VARIANTS
from models.phase.model import LabelledFeatures, PhaseModel, PhaseModelConfig
from models.taxonomy import load_taxonomy

WEIGHTS_FILE = "weights.pt"
MODEL_VERSION = "1.0.0"
# The variants every evaluation reports; `offline_full` is what the pipeline uses on whole operations.
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def load_features(
    videos: Sequence[PhaseVideo], encoder: DetectorEncoder, cache_dir: str | Path | None = None, log: Log = _quiet
) -> list[LabelledFeatures]:
    """Encode every frame of every video, reusing `cache_dir/<encoder key>/` when present."""
    out = []
    for video in videos:
        cache = None
        if cache_dir is not None:
            source = video.video_path or (min(video.images.values()).parent if video.images else video.name)
            tag = hashlib.sha1(str(Path(source).resolve()).encode()).hexdigest()[:10]
            cache = Path(cache_dir) / encoder.key / f"{video.name}-{tag}.npz"
        stored = np.load(cache) if cache is not None and cache.exists() else None
        if stored is not None and (video.layout == "video" or len(stored["times"]) == len(video.images)):
            times, features = stored["times"], stored["features"]
            log(f"{video.name}: {len(times)} cached frame features ({cache})")
        else:  # not cached, or the folder's images changed since
            started = time.perf_counter()
            times, features = encode_frames(encoder, video.frames())
            log(f"{video.name}: encoded {len(times)} frames in {time.perf_counter() - started:.1f} s")
            if cache is not None:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_name(cache.stem + ".tmp.npz")
                np.savez(tmp, times=times, features=features)
                tmp.replace(cache)
        out.append(LabelledFeatures(video.name, times, features, video.labels.seconds, video.labels.phase_id))
    return out


def _per_second_labels(video: LabelledFeatures) -> tuple[np.ndarray, np.ndarray]:
    """The first label of every second (1 fps evaluation), as (times, phase ids)."""
    second = np.floor(video.label_times + 1e-9).astype(np.int64)
    _, first = np.unique(second, return_index=True)
    return video.label_times[first], video.label_phase[first]


def predict_variants(model: PhaseModel, video: LabelledFeatures) -> dict[str, np.ndarray]:
    """Decoded phase per second (0..n_seconds-1) of every evaluation variant."""
    n = video.n_seconds
    out = {"frame": np.full(n, -1, dtype=np.int64)}
    second = np.floor(video.times + 1e-9).astype(np.int64)
    frame_pred = model.frame_log_proba(video.features).argmax(axis=1)
    out["frame"][second] = frame_pred  # one frame per second in our data; the last frame of a second wins
    for name, mode, full in (("online", "online", False), ("offline", "offline", False),
                             ("online_full", "online", True), ("offline_full", "offline", True)):
        out[name] = model.predict(video.times, video.features, n, mode=mode, full_procedure=full).phase_id
    hmm = model.hmm(n, full_procedure=True)
    none = np.full((n, model.n_phases), np.nan)
    out["prior_only_full"] = model.decode(hmm.smooth(none), none, hmm)
    return out


def _edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    d = np.arange(len(b) + 1)
    for i, x in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, y in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (x != y))
    return int(d[-1])


def _runs(ids: np.ndarray, names: Sequence[str]) -> list[str]:
    ids = np.asarray(ids)
    if len(ids) == 0:
        return []
    keep = np.concatenate([[True], ids[1:] != ids[:-1]])
    return [names[i] for i in ids[keep]]


def _score_video(model: PhaseModel, video: LabelledFeatures, relaxed_s: float) -> tuple[dict[str, Any], dict[str, dict]]:
    """One video: a JSON-able entry per variant, and the PhaseMetrics objects for averaging."""
    names = model.phase_names
    times, gt = _per_second_labels(video)
    at = np.floor(times + 1e-9).astype(np.int64)
    entry: dict[str, Any] = {"frames_scored": len(gt), "seconds": video.n_seconds, "gt_segments": _runs(gt, names)}
    metrics: dict[str, dict] = {}
    for variant, path in predict_variants(model, video).items():
        pred = path[at]
        scored = pred >= 0
        metrics[variant] = {
            "strict": phase_metrics(gt[scored], pred[scored], names, times_s=times[scored]),
            "relaxed": phase_metrics(gt[scored], pred[scored], names, times_s=times[scored], relaxed_s=relaxed_s),
        }
        entry[variant] = {rule: m.to_dict() for rule, m in metrics[variant].items()}
        if variant != "frame":
            segs = _runs(path, names)
            entry[variant]["segments"] = segs
            entry[variant]["segment_edit_distance"] = _edit_distance(segs, entry["gt_segments"])
    return entry, metrics


def _summary(collected: list[dict[str, dict]]) -> dict[str, Any]:
    return {
        variant: {rule: mean_over_videos([c[variant][rule] for c in collected]) for rule in ("strict", "relaxed")}
        for variant in VARIANTS
    }


def evaluate_model(
    model: PhaseModel, videos: Sequence[LabelledFeatures], relaxed_s: float = RELAXED_WINDOW_S
) -> dict[str, Any]:
    """Strict and relaxed metrics of every variant on every video, and their means over videos."""
    per_video, collected = {}, []
    for video in videos:
        per_video[video.name], metrics = _score_video(model, video, relaxed_s)
        collected.append(metrics)
    return {"per_video": per_video, "mean_over_videos": _summary(collected)}


def leave_one_video_out(
    videos: Sequence[LabelledFeatures],
    config: PhaseModelConfig,
    encoder: dict[str, Any] | None = None,
    relaxed_s: float = RELAXED_WINDOW_S,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Train on all videos but one, evaluate on that one, for each video; metrics per fold and mean."""
    if len(videos) < 2:
        raise ValueError(f"leave-one-video-out needs at least two videos, got {[v.name for v in videos]}")
    names = load_taxonomy().phase_names
    per_video, collected = {}, []
    for held_out in videos:
        train = [v for v in videos if v is not held_out]
        model = PhaseModel.fit(train, names, config, encoder)
        fold, metrics = _score_video(model, held_out, relaxed_s)
        fold["trained_on"] = [v.name for v in train]
        per_video[held_out.name] = fold
        collected.append(metrics)
        log(f"fold {held_out.name}: accuracy " + ", ".join(f"{v} {fold[v]['strict']['accuracy']}" for v in VARIANTS))
    return {"per_video": per_video, "mean_over_videos": _summary(collected)}


def protocol(videos: Sequence[LabelledFeatures], data: Sequence[str], relaxed_s: float, scheme: str) -> dict[str, Any]:
    """How the numbers were obtained, stated next to them."""
    return {
        "scheme": scheme,
        "data": list(data),
        "videos": [v.name for v in videos],
        "scored_frames": "ground-truth labels at 1 fps (the first label of every second); only labelled frames are scored",
        "input_frames": "every frame image (CholecT50) or 1 fps samples (Cholec80 video) is encoded; unlabelled ones are input only",
        "evaluation_fps": 1.0,
        "relaxed_boundary": {"window_s": relaxed_s, "rule": "metrics.phase.relaxed_correct"},
        "strict_and_relaxed": "both reported; 'strict' = plain frame accuracy",
        "averaging": "metrics per video, then mean and std over videos; per-phase macro over phases in the video's ground truth",
        "variants": VARIANTS,
    }


def train_phase_model(
    data: Sequence[str | Path],
    out_dir: str | Path,
    detector: str | Path | None = None,
    config: PhaseModelConfig | None = None,
    cache_dir: str | Path | None = "runs/phase/features",
    videos: Sequence[str] | None = None,
    lovo: bool = True,
    relaxed_s: float = RELAXED_WINDOW_S,
    version: str = MODEL_VERSION,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Encode, evaluate leave-one-video-out, fit on everything, write the model folder; returns metadata."""
    from models.phase.card import write_model_card
    from models.registry import write_metadata

    config = config or PhaseModelConfig()
    started = time.perf_counter()
    encoder = DetectorEncoder(detector)
    features: list[LabelledFeatures] = []
    for root in data:
        features += load_features(read_phase_dataset(root, list(videos) if videos else None), encoder, cache_dir, log)
    names = [v.name for v in features]
    if len(set(names)) != len(names):
        raise ValueError(f"video names must be unique across data folders, got {names}")
    identity = encoder.identity
    evaluation = None
    if lovo and len(features) >= 2:
        evaluation = leave_one_video_out(features, config, identity, relaxed_s, log)
        evaluation["protocol"] = protocol(features, [str(d) for d in data], relaxed_s, "leave-one-video-out")
    model = PhaseModel.fit(features, load_taxonomy().phase_names, config, identity)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.pt"):
        if stale.name != WEIGHTS_FILE:
            stale.unlink()
    model.save(out_dir / WEIGHTS_FILE)
    labelled = sum(int((v.frame_labels() >= 0).sum()) for v in features)
    metadata = {
        "name": "surglens-phase",
        "kind": "phase",
        "version": version,
        "classes": list(model.phase_names),
        "phases": list(model.phase_names),
        "input": {
            "features": f"detector pooled activations (layers {identity['feature_layers']}) + per-class max box "
                        f"confidence (>= {identity['presence_conf']}), {model.input_dim} values per frame",
            "frame_rate": "any; evidence is averaged per second of video time",
        },
        "detector": {k: identity[k] for k in ("detector_name", "detector_version", "detector_sha256", "imgsz",
                                                "feature_layers", "presence_conf", "classes")},
        "config": config.to_dict(),
        "expected_durations_s": {n: round(float(d), 1) for n, d in zip(model.phase_names, model.durations_s)},
        "training": {
            "data": [str(d) for d in data],
            "videos": names,
            "labelled_frames": labelled,
            "encoded_frames": int(sum(len(v.times) for v in features)),
            "data_licence": "CholecT50 / Cholec80: CC BY-NC-SA 4.0 (CAMMA), non-commercial research and education",
            "seconds": round(time.perf_counter() - started, 1),
            "python": platform.python_version(),
        },
        "evaluation": None if evaluation is None else _headline(evaluation),
        "licence": "AGPL-3.0 (SurgLens); trained on CC BY-NC-SA 4.0 data: non-commercial research and education",
    }
    write_metadata(out_dir, metadata)
    write_model_card(out_dir, metadata, evaluation)
    return {"metadata": metadata, "evaluation": evaluation}


def _headline(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation as metadata keeps it: protocol, accuracy and macro metrics per variant, per-video accuracy."""
    mean = evaluation["mean_over_videos"]
    return {
        "protocol": evaluation["protocol"],
        "mean_over_videos": {
            variant: {rule: {"accuracy": r["accuracy"], "macro": r["macro"]} for rule, r in rules.items()}
            for variant, rules in mean.items()
        },
        "per_video_accuracy": {
            name: {variant: fold[variant]["strict"]["accuracy"] for variant in VARIANTS}
            for name, fold in evaluation["per_video"].items()
        },
    }


def evaluate_phase_model(
    data: Sequence[str | Path],
    weights: str | Path | None = None,
    detector: str | Path | None = None,
    cache_dir: str | Path | None = "runs/phase/features",
    videos: Sequence[str] | None = None,
    lovo: bool = False,
    relaxed_s: float = RELAXED_WINDOW_S,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Score a trained model on data folders, or (lovo=True) retrain per fold with its config."""
    model = PhaseModel.load(weights)
    encoder = DetectorEncoder(detector)
    expected = model.encoder.get("detector_sha256")
    actual = encoder.identity["detector_sha256"]
    features: list[LabelledFeatures] = []
    for root in data:
        features += load_features(read_phase_dataset(root, list(videos) if videos else None), encoder, cache_dir, log)
    if lovo:
        result = leave_one_video_out(features, model.config, encoder.identity, relaxed_s, log)
        scheme = "leave-one-video-out (retrained per fold with the model's config)"
    else:
        if expected and expected != actual:
            raise ValueError(
                f"the phase model was trained on detector features with SHA-256 {expected[:12]}..., the detector given "
                f"has {actual[:12]}...: pass the matching --detector or retrain with `surglens train-phase`"
            )
        result = evaluate_model(model, features, relaxed_s)
        scheme = "trained model as is (training videos score optimistically)"
    result["protocol"] = protocol(features, [str(d) for d in data], relaxed_s, scheme)
    result["model"] = {"weights": str(weights or "phase"), "config": model.config.to_dict()}
    result["detector"] = {k: encoder.identity[k] for k in ("detector_name", "detector_version", "detector_sha256")}
    return result


def dump_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write a result dict as indented JSON (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(path)
    return path
