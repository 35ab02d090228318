"""Training and evaluation of the temporal phase model (`surglens train-phase` with cholec80-labels).

Protocol (stated in the card):
- Held out of every fit: the operations with real frames (CholecT50 VID68/70/73 = Cholec80 68/70/73)
  and the Cholec80 videos the shared clips were cut from (named in the clip file names).
- Detector noise is measured on real labelled frames: m2cai16 test and CholecT50 frames. When a
  CholecT50 operation is scored, a fold model is trained whose noise excludes that operation's
  frames, so the scored operation is outside all fitting and tuning.
- Label level: a model fitted on Cholec80 1-40 (minus the held-out ones) is scored on 41-80 with
  detector-like noise injected (the official split).
- Temperatures are chosen on operations held out of fitting inside the training set.
"""
from __future__ import annotations

import hashlib
import json
import platform
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from metrics.calibration import expected_calibration_error
from metrics.phase import RELAXED_WINDOW_S, mean_over_videos, phase_metrics
from models.phase.evidence import ToolNoise, per_second
from models.phase.sequences import LabelSequence, read_label_sequences
from models.phase.temporal import VARIANTS, TemporalConfig, TemporalPhaseModel
from models.taxonomy import load_taxonomy

WEIGHTS_FILE = "weights.pt"
MODEL_VERSION = "2.0.0"
CLIP_SECONDS = 32
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- real frames: detector confidences --------------------------------------------------------
def detector_confidences(detector: Any, images: Sequence[Path], cache: Path | None, log: Log = _quiet) -> np.ndarray:
    """(N, C) per-class maximum box confidence of the detector on each image (cached by content)."""
    from PIL import Image

    from models.phase.encoder import DetectorEncoder

    encoder = DetectorEncoder(detector=detector)
    if cache is not None:
        digest = hashlib.sha1("\n".join(str(p) for p in images).encode()).hexdigest()[:12]
        cache = cache / encoder.key / f"presence-{digest}.npy"
        if cache.exists():
            return np.load(cache)
    out, started = [], time.perf_counter()
    for i in range(0, len(images), 16):
        frames = []
        for path in images[i:i + 16]:
            with Image.open(path) as im:
                frames.append(np.asarray(im.convert("RGB")))
        out.append(encoder.presence(detector(frames)))
    conf = np.concatenate(out) if out else np.zeros((0, len(detector.class_names)), np.float32)
    log(f"detector on {len(images)} frames in {time.perf_counter() - started:.1f} s")
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache, conf)
    return conf


def m2cai_frames(root: str | Path, split: str = "test") -> tuple[list[Path], np.ndarray]:
    """Images of an m2cai16-tool-locations split and their (N, C) tool presence (taxonomy order)."""
    from models.datasets.voc import VOCDataset

    taxonomy = load_taxonomy()
    anns = VOCDataset(root).read_split(split)
    truth = np.zeros((len(anns), len(taxonomy.tools)), dtype=bool)
    for i, ann in enumerate(anns):
        for label in ann.labels:
            truth[i, taxonomy.tool_id(label)] = True
    return [a.image_path for a in anns], truth


class RealOperation:
    """A CholecT50 operation with frames: detector evidence at its sparse frames, per-second truth."""

    def __init__(self, name: str, times: np.ndarray, confidences: np.ndarray, truth_tools: np.ndarray,
                 labels: LabelSequence):
        self.name, self.times, self.confidences, self.truth_tools, self.labels = name, times, confidences, truth_tools, labels

    def evidence(self) -> np.ndarray:
        """(T, C) per-second evidence over the whole operation (frames held until the next)."""
        return per_second(self.times, self.confidences, len(self.labels))


def real_operations(cholect50_root: str | Path, sequences: dict[int, LabelSequence], detector: Any,
                    cache: Path | None, log: Log = _quiet) -> list[RealOperation]:
    """Every CholecT50 video whose Cholec80 labels are known, with the detector run on its frames."""
    from models.datasets.cholect50 import read_cholect50

    out = []
    for video in read_cholect50(cholect50_root):
        number = int(re.sub(r"\D", "", video.name))
        labels = sequences.get(number)
        if labels is None:
            continue
        frames = sorted(video.images)
        times = np.asarray(frames, dtype=np.float64) / video.fps
        conf = detector_confidences(detector, [video.images[f] for f in frames], cache, log)
        second = np.clip(np.floor(times).astype(np.int64), 0, len(labels) - 1)
        out.append(RealOperation(video.name, times, conf, labels.tools[second], labels))
    return out


def measure_noise(sources: dict[str, tuple[np.ndarray, np.ndarray]], use: Sequence[str]) -> ToolNoise:
    """ToolNoise from the named (confidences, truth) sources."""
    conf = np.concatenate([sources[s][0] for s in use])
    truth = np.concatenate([sources[s][1] for s in use])
    return ToolNoise.measure(conf, truth, load_taxonomy().tool_names, source=list(use))


def fit_cached(
    sequences: Sequence[LabelSequence], noise: ToolNoise, config: TemporalConfig, identity: dict[str, Any],
    variants: Sequence[str], cache: Path | None, log: Log = _quiet,
) -> TemporalPhaseModel:
    """`TemporalPhaseModel.fit`, reusing a model fitted before on exactly the same inputs (runs/ cache)."""
    names = load_taxonomy().phase_names
    key = None
    if cache is not None:
        h = hashlib.sha1(json.dumps([[s.name for s in sequences], config.to_dict(), list(variants),
                                     identity.get("detector_sha256")]).encode())
        for arr in noise.present + noise.absent:
            h.update(np.ascontiguousarray(arr).tobytes())
        key = cache / "temporal" / f"{h.hexdigest()[:16]}.pt"
        if key.exists():
            import torch

            log(f"reusing fitted model {key}")
            model = TemporalPhaseModel.from_state(torch.load(key, map_location="cpu", weights_only=True))
            calibration = [s for s in sequences if s.name in model.training.get("calibration", [])]
            if "clip" in model.nets and calibration and "rule_whole_read_as_whole" not in model.training.get("operation_rule", {}):
                from models.phase.temporal import choose_edge_threshold

                model.edge_threshold, model.training["operation_rule"] = choose_edge_threshold(model, calibration)
                model.save(key)
            return model
    model = TemporalPhaseModel.fit(sequences, noise, names, config, identity, variants, log)
    if key is not None:
        model.save(key)
    return model


def anatomy_areas(anatomy: Any, frames: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """Per-frame class area fractions from the anatomy model."""
    return [r.areas for r in anatomy(list(frames))]


def _images_areas(anatomy: Any, images: Sequence[Path], cache: Path | None, log: Log) -> list[dict[str, float]]:
    from PIL import Image

    key = None
    if cache is not None:
        digest = hashlib.sha1(("\n".join(str(p) for p in images) + str(anatomy.entry.weights.stat().st_size)
                               + str(anatomy.entry.weights.stat().st_mtime_ns)).encode()).hexdigest()[:12]
        key = cache / "anatomy" / f"areas-{digest}.json"
        if key.exists():
            return json.loads(key.read_text())
    started, out = time.perf_counter(), []
    for path in images:
        with Image.open(path) as im:
            out += anatomy_areas(anatomy, [np.asarray(im.convert("RGB"))])
    log(f"anatomy on {len(images)} frames in {time.perf_counter() - started:.1f} s")
    if key is not None:
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text(json.dumps(out))
    return out


def fit_calot_evidence(anatomy: Any, cholect50_root: str | Path, sequences: dict[int, LabelSequence],
                       cache: Path | None, exclude: Sequence[str] = (), log: Log = _quiet):
    """CalotEvidence fitted on the CholecT50 frames labelled Calot or gallbladder dissection."""
    from models.datasets.cholect50 import read_cholect50
    from models.phase.appearance import CALOT, GB_DISSECTION, CalotEvidence, area_features

    names = load_taxonomy().phase_names
    c, g = names.index(CALOT), names.index(GB_DISSECTION)
    images, is_calot = [], []
    for video in read_cholect50(cholect50_root):
        if video.name in exclude:
            continue
        labels = sequences.get(int(re.sub(r"\D", "", video.name)))
        if labels is None:
            continue
        for frame in sorted(video.images):
            second = int(frame / video.fps)
            if second < len(labels) and labels.phase[second] in (c, g):
                images.append(video.images[frame])
                is_calot.append(labels.phase[second] == c)
    areas = _images_areas(anatomy, images, cache, log)
    classes = tuple(anatomy.classes[1:])
    return CalotEvidence.fit(area_features(areas, classes), np.asarray(is_calot), classes)


# -- clips --------------------------------------------------------------------------------------
def clip_source(path: str | Path) -> tuple[int, int]:
    """(Cholec80 video number, centre second) a shared clip was cut from, from its file name."""
    match = re.search(r"VID(\d+)_(\d+)_and_VID(\d+)_(\d+)_([ab])", Path(path).name)
    if not match:
        raise ValueError(f"clip name {Path(path).name!r} does not name its source (…VIDaa_s_and_VIDbb_t_a|b)")
    a, s, b, t, which = match.groups()
    return (int(a), int(s)) if which == "a" else (int(b), int(t))


def clip_evidence(path: str | Path, detector: Any, sample_fps: float = 1.0,
                  anatomy: Any = None) -> tuple[np.ndarray, np.ndarray, list[dict[str, float]]]:
    """Per-second detector evidence (T, C) of a video file sampled at `sample_fps` of its real fps, the
    frame times and (with `anatomy`) the frames' anatomy class areas."""
    from models.phase.encoder import DetectorEncoder
    from video import FrameReader, probe

    encoder = DetectorEncoder(detector=detector)
    times, conf, batch, areas = [], [], [], []
    for frame in FrameReader(path, sample_fps=sample_fps):
        batch.append(frame.rgb)
        times.append(frame.timestamp_s)
        if len(batch) == 16:
            conf.append(encoder.presence(detector(batch)))
            areas += anatomy_areas(anatomy, batch) if anatomy is not None else []
            batch = []
    if batch:
        conf.append(encoder.presence(detector(batch)))
        areas += anatomy_areas(anatomy, batch) if anatomy is not None else []
    n = max(int(np.ceil(probe(path).duration_s or 0)), int(np.floor(max(times))) + 1)
    return per_second(np.asarray(times), np.concatenate(conf), n), np.asarray(times), areas


# -- scoring --------------------------------------------------------------------------------------
def score(gt: np.ndarray, pred: np.ndarray, probs: np.ndarray | None, relaxed_s: float = RELAXED_WINDOW_S) -> dict[str, Any]:
    """Strict and relaxed metrics of one sequence (+ ECE of the max probability when given)."""
    names = load_taxonomy().phase_names
    n = min(len(gt), len(pred))
    out = {
        "strict": phase_metrics(gt[:n], pred[:n], names),
        "relaxed": phase_metrics(gt[:n], pred[:n], names, relaxed_s=relaxed_s),
    }
    if probs is not None:
        out["ece"] = expected_calibration_error(probs[:n].max(axis=1), probs[:n].argmax(axis=1) == gt[:n])
    return out


def summarise(per_video: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std over videos of strict and relaxed metrics, and mean ECE."""
    rows = list(per_video.values())
    out = {rule: mean_over_videos([r[rule] for r in rows]) for rule in ("strict", "relaxed")}
    eces = [r["ece"] for r in rows if "ece" in r]
    if eces:
        out["ece"] = {"mean": round(float(np.mean(eces)), 4), "std": round(float(np.std(eces)), 4)}
    return out


def _json_rows(per_video: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per video: strict and relaxed accuracy, ECE and any extra fields (chosen variant, phases)."""
    out = {}
    for name, r in per_video.items():
        row = {"strict_accuracy": round(r["strict"].accuracy, 4), "relaxed_accuracy": round(r["relaxed"].accuracy, 4)}
        row.update({k: v for k, v in r.items() if k not in ("strict", "relaxed")})
        out[name] = row
    return out


def hmm_baseline(train: Sequence[LabelSequence], noise: ToolNoise, seed: int = 0):
    """The previous model (naive Bayes on tool presence + workflow HMM), fitted on noised label sequences."""
    from models.phase.model import LabelledFeatures, PhaseModel, PhaseModelConfig

    rng = np.random.default_rng(seed)
    videos = []
    for seq in train:
        ev = noise.sample(seq.tools, rng, rho=0.5)
        t = np.arange(len(seq), dtype=np.float64)
        videos.append(LabelledFeatures(seq.name, t, ev, t, seq.phase))
    encoder = {"classes": list(noise.tool_names)}
    return PhaseModel.fit(videos, load_taxonomy().phase_names, PhaseModelConfig(head="bernoulli"), encoder)


def _hmm_predict(model: Any, evidence: np.ndarray, mode: str) -> np.ndarray:
    t = np.arange(len(evidence), dtype=np.float64)
    return model.predict(t, evidence, len(evidence), mode=mode, full_procedure=True).phase_id


def evaluate_real(model: TemporalPhaseModel, op: RealOperation, hmm: Any | None = None) -> dict[str, dict[str, Any]]:
    """Every variant on one real operation: detector evidence in, scored against its labels."""
    evidence, gt = op.evidence(), op.labels.phase
    out = {}
    chosen = model.choose_variant(evidence)
    for variant in VARIANTS:
        probs = model.probabilities(evidence, variant)
        out[variant] = score(gt, probs.argmax(axis=1), probs)
    out["auto"] = dict(out[chosen], chosen=chosen)
    if hmm is not None:
        out["hmm_offline_full"] = score(gt, _hmm_predict(hmm, evidence, "offline"), None)
        out["hmm_online_full"] = score(gt, _hmm_predict(hmm, evidence, "online"), None)
    return out


def train_temporal(
    label_root: str | Path,
    cholect50_root: str | Path | None,
    out_dir: str | Path,
    m2cai_root: str | Path | None = None,
    clips: Sequence[str | Path] = (),
    detector: str | Path | None = None,
    config: TemporalConfig | None = None,
    cache_dir: str | Path | None = "runs/phase/presence",
    anatomy: str | Path | None = None,
    folds: bool = True,
    version: str = MODEL_VERSION,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Fit the shipped temporal model and every evaluation model; write weights, metadata and card."""
    started, config = time.perf_counter(), config or TemporalConfig()
    from models.detector import Detector
    from models.phase.temporal_card import write_temporal_card
    from models.registry import write_metadata

    taxonomy = load_taxonomy()
    names = taxonomy.phase_names
    cache = Path(cache_dir) if cache_dir else None
    det = Detector(detector)
    from models.phase.encoder import DetectorEncoder

    identity = DetectorEncoder(detector=det).identity
    all_seq = {s.number: s for s in read_label_sequences(label_root)}

    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if m2cai_root is not None:
        images, truth = m2cai_frames(m2cai_root, "test")
        sources["m2cai16-test"] = (detector_confidences(det, images, cache, log), truth)
    real = real_operations(cholect50_root, all_seq, det, cache, log) if cholect50_root else []
    for op in real:
        sources[op.name] = (op.confidences, op.truth_tools)
    if not sources:
        raise ValueError("no labelled real frames to measure the detector's noise on (give --m2cai or a CholecT50 root)")

    clip_items = [(Path(c), *clip_source(c)) for c in clips]
    held_numbers = sorted({op.labels.number for op in real} | {v for _, v, _ in clip_items})
    train_pool = [s for n, s in sorted(all_seq.items()) if n not in held_numbers]
    log(f"{len(train_pool)} label sequences for fitting; held out of every fit: {held_numbers}")

    evaluation: dict[str, Any] = {"protocol": {
        "held_out_of_every_fit": held_numbers,
        "fitting_sequences": [s.name for s in train_pool],
        "noise_sources": sorted(sources),
        "relaxed_boundary_s": RELAXED_WINDOW_S,
        "scored": "every second with a label (1 fps); strict = plain accuracy; relaxed = Cholec80 10 s rule",
        "averaging": "per video, then mean and std over videos",
        "temperature": f"chosen on {config.calibration_videos} training operations held out of fitting",
    }}

    # 1. Label level, official split: fit on 1-40, score 41-80 with detector-like noise.
    noise_all = measure_noise(sources, sorted(sources))
    if folds:
        # 41-80 is never fitted on, so every operation of 1-40 may be (clip sources included)
        train_split = [s for n, s in sorted(all_seq.items()) if n <= 40]
        test_split = [s for n, s in sorted(all_seq.items()) if 40 < n <= 80]  # library corrections are 1000+
        log(f"label level: fitting on {len(train_split)} operations of 1-40, scoring {len(test_split)} of 41-80")
        split_model = fit_cached(train_split, noise_all, config, identity, ("offline", "online"), cache, log)
        split_hmm = hmm_baseline(train_split, noise_all, config.seed)
        rng = np.random.default_rng(1234)
        per_video: dict[str, dict[str, dict[str, Any]]] = {"offline": {}, "online": {}, "offline_clean": {},
                                                            "hmm_offline_full": {}}
        for seq in test_split:
            ev = noise_all.sample(seq.tools, rng, rho=0.5)
            for variant in ("offline", "online"):
                p = split_model.probabilities(ev, variant)
                per_video[variant][seq.name] = score(seq.phase, p.argmax(axis=1), p)
            p = split_model.probabilities(seq.tools.astype(np.float32), "offline")
            per_video["offline_clean"][seq.name] = score(seq.phase, p.argmax(axis=1), p)
            per_video["hmm_offline_full"][seq.name] = score(seq.phase, _hmm_predict(split_hmm, ev, "offline"), None)
        evaluation["label_level_41_80"] = {
            "fitted_on": [s.name for s in train_split],
            "scored": [s.name for s in test_split],
            "noise": "detector confidences sampled per tool given the annotation (all measured sources), rho 0.5",
            "mean_over_videos": {v: summarise(r) for v, r in per_video.items()},
            "per_video": {v: _json_rows(r) for v, r in per_video.items()},
        }
        log("label level 41-80: " + ", ".join(
            f"{v} {evaluation['label_level_41_80']['mean_over_videos'][v]['strict']['accuracy']['mean']}"
            for v in per_video))

    # 2. Real frames, each CholecT50 operation outside its fold's fitting and noise.
    if folds and real:
        per_video = {}
        for op in real:
            use = [s for s in sources if s != op.name]
            fold_noise = measure_noise(sources, use)
            log(f"fold {op.name}: noise from {use}")
            fold = fit_cached(train_pool, fold_noise, config, identity, VARIANTS, cache, log)
            fold_hmm = hmm_baseline(train_pool, fold_noise, config.seed)
            per_video[op.name] = evaluate_real(fold, op, fold_hmm)
            log(f"fold {op.name}: " + ", ".join(f"{v} {r['strict'].accuracy:.3f}" for v, r in per_video[op.name].items()))
        variants = list(next(iter(per_video.values())))
        evaluation["real_frames_folds"] = {
            "scheme": "per CholecT50 operation: fitted on the label pool, noise measured without its frames",
            "mean_over_videos": {v: summarise({n: r[v] for n, r in per_video.items()}) for v in variants},
            "per_video": {v: _json_rows({n: r[v] for n, r in per_video.items()}) for v in variants},
        }

    # 3. The shipped model: label pool, noise from every source.
    log("shipped model: fitting on the label pool with noise from every source")
    model = fit_cached(train_pool, noise_all, config, identity, VARIANTS, cache, log)
    if "operation_rule" in model.training:
        evaluation["operation_detection"] = {"threshold": model.edge_threshold, **model.training["operation_rule"]}

    # 4. Anatomy evidence for clips: fitted on CholecT50 frames (never clip sources).
    anatomy_model = None
    if anatomy is not None and cholect50_root is not None:
        from models.anatomy.model import AnatomyModel

        anatomy_model = AnatomyModel(anatomy)
        model.calot_evidence = fit_calot_evidence(anatomy_model, cholect50_root, all_seq, cache, log=log)
        log(f"anatomy evidence fitted on {model.calot_evidence.frames} CholecT50 frames")

    # 5. Clips, scored with the shipped model (their source operations are outside its fitting).
    if clip_items:
        per_clip: dict[str, dict[str, Any]] = {}
        tools_only: dict[str, dict[str, Any]] = {}
        for path, number, centre in clip_items:
            seq = all_seq.get(number)
            if seq is None:
                continue
            ev, times, areas = clip_evidence(path, det, anatomy=anatomy_model)
            start = max(centre - CLIP_SECONDS // 2, 0)
            gt = seq.phase[start:start + len(ev)]
            chosen = model.choose_variant(ev)
            ratio = model.anatomy_log_ratio(times, areas, len(ev)) if areas else None
            for target, use in ((per_clip, ratio), (tools_only, None)):
                p = model.predict(ev, chosen, use).probs.astype(np.float64)
                r = score(gt, p.argmax(axis=1), p)
                r.update(chosen=chosen, truth=sorted({names[i] for i in gt}),
                         predicted=sorted({names[i] for i in p.argmax(axis=1)}))
                target[path.name] = r
            log(f"clip {path.name}: {chosen} {per_clip[path.name]['strict'].accuracy:.3f} "
                f"(tools only {tools_only[path.name]['strict'].accuracy:.3f}) truth {per_clip[path.name]['truth']} "
                f"predicted {per_clip[path.name]['predicted']}")
        evaluation["clips"] = {
            "scheme": "shipped model on each shared clip (its source operation is outside all fitting); the "
                      "variant is chosen from the evidence as `surglens analyze` does"
                      + ("; anatomy evidence from the shipped anatomy segmenter" if anatomy_model else ""),
            "mean_over_videos": summarise(per_clip),
            "per_video": _json_rows(per_clip),
        }
        if anatomy_model is not None:
            evaluation["clips"]["tools_only"] = {"mean_over_videos": summarise(tools_only),
                                                 "per_video": _json_rows(tools_only)}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("*.pt"):
        if stale.name != WEIGHTS_FILE:
            stale.unlink()
    model.training = {**model.training, "held_out": held_numbers}
    model.save(out_dir / WEIGHTS_FILE)
    metadata = {
        "name": "surglens-phase",
        "kind": "phase",
        "model_type": "temporal",
        "version": version,
        "classes": list(names),
        "phases": list(names),
        "default_variant": "offline",
        "variants": {
            "offline": "whole operation: acausal MS-TCN over per-second tool evidence + elapsed fraction + length",
            "online": "causal MS-TCN over tool evidence + elapsed minutes (live)",
            "clip": "acausal MS-TCN over tool evidence only, trained on random 16-240 s crops",
            "auto": "offline when the evidence shows a whole operation, else clip (what `surglens analyze` uses)",
        },
        "input": {
            "features": f"per-second mean of the detector's per-class max box confidence (>= {identity['presence_conf']}), "
                        f"{len(taxonomy.tools)} values; seconds without a frame hold the last value",
            "frame_rate": "any; evidence is averaged per second of video time",
        },
        "detector": {k: identity[k] for k in ("detector_name", "detector_version", "detector_sha256", "imgsz",
                                                "presence_conf", "classes")},
        "config": config.to_dict(),
        "temperatures": model.temperatures,
        "anatomy_evidence": None if model.calot_evidence is None else {
            "model": str(anatomy), "frames": model.calot_evidence.frames,
            "used_for": "clips: Calot triangle vs gallbladder dissection from the anatomy in view"},
        "detector_noise": noise_all.rates(),
        "training": {
            "data": [str(label_root), str(cholect50_root), str(m2cai_root)],
            "fitting": model.training.get("fitting", []),
            "calibration": model.training.get("calibration", []),
            "held_out": held_numbers,
            "data_licence": "Cholec80 / CholecT50 / m2cai16: CC BY-NC-SA 4.0 (CAMMA), non-commercial research and education",
            "seconds": round(time.perf_counter() - started, 1),
            "python": platform.python_version(),
        },
        "evaluation": headline(evaluation),
        "licence": "AGPL-3.0 (SurgLens); trained on CC BY-NC-SA 4.0 data: non-commercial research and education",
    }
    write_metadata(out_dir, metadata)
    full = to_json(evaluation)
    (out_dir / "evaluation.json").write_text(json.dumps(full, indent=1) + "\n")
    write_temporal_card(out_dir, metadata, full)
    return {"metadata": metadata, "evaluation": full}


def to_json(obj: Any) -> Any:
    """Evaluation dicts with PhaseMetrics replaced by their dicts."""
    from metrics.phase import PhaseMetrics

    if isinstance(obj, PhaseMetrics):
        return obj.to_dict()
    if isinstance(obj, dict):
        return {k: to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    return obj


def headline(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The numbers metadata keeps: strict/relaxed accuracy mean ± std per variant of each scheme."""
    out: dict[str, Any] = {"protocol": evaluation["protocol"]}
    for scheme in ("real_frames_folds", "clips", "label_level_41_80"):
        if scheme not in evaluation:
            continue
        means = evaluation[scheme]["mean_over_videos"]
        if "strict" in means:
            means = {"auto": means}
        out[scheme] = {
            variant: {rule: m[rule]["accuracy"] for rule in ("strict", "relaxed")} | ({"ece": m["ece"]} if "ece" in m else {})
            for variant, m in means.items()
        }
    return out


def evaluate_temporal(
    model: TemporalPhaseModel,
    data: Sequence[str | Path],
    detector: str | Path | None = None,
    videos: Sequence[str] | None = None,
    relaxed_s: float = RELAXED_WINDOW_S,
    log: Log = _quiet,
) -> dict[str, Any]:
    """Score a temporal model on CholecT50 or Cholec80-video roots: detector on the frames -> model.

    Every frame the data has is input (CholecT50: sparse images, held between; Cholec80: the video at
    1 fps); every labelled second is scored (its first label).
    """
    from models.detector import Detector
    from models.phase.data import read_phase_dataset
    from models.phase.encoder import DetectorEncoder

    det = Detector(detector)
    encoder = DetectorEncoder(detector=det, presence_conf=model.encoder.get("presence_conf", 0.25))
    expected, actual = model.encoder.get("detector_sha256"), encoder.identity["detector_sha256"]
    if expected and expected != actual:
        raise ValueError(f"the phase model was trained with detector weights {expected[:12]}..., the detector given has "
                         f"{actual[:12]}...: pass the matching --detector or retrain with `surglens train-phase`")
    names = load_taxonomy().phase_names
    per_video: dict[str, dict[str, Any]] = {}
    for root in data:
        for video in read_phase_dataset(root, list(videos) if videos else None):
            started = time.perf_counter()
            times, conf, batch = [], [], []
            for t, rgb in video.frames():
                times.append(t)
                batch.append(rgb)
                if len(batch) == 16:
                    conf.append(encoder.presence(det(batch)))
                    batch = []
            if batch:
                conf.append(encoder.presence(det(batch)))
            labels = video.labels.per_second()
            label_s = np.floor(labels.seconds + 1e-9).astype(np.int64)
            n = int(max(label_s.max(), np.floor(max(times)))) + 1
            evidence = per_second(np.asarray(times), np.concatenate(conf), n)
            entry: dict[str, Any] = {}
            chosen = model.choose_variant(evidence)
            for variant in list(model.nets) + ["auto"]:
                v = chosen if variant == "auto" else variant
                probs = model.probabilities(evidence, v)[label_s]
                entry[variant] = score(labels.phase_id, probs.argmax(axis=1), probs, relaxed_s)
            entry["auto"]["chosen"] = chosen
            per_video[video.name] = entry
            log(f"{video.name}: {len(times)} frames, {n} s, {time.perf_counter() - started:.1f} s; " + ", ".join(
                f"{v} {r['strict'].accuracy:.3f}" for v, r in entry.items()) + f" (auto chose {chosen})")
    if not per_video:
        raise ValueError(f"no videos to evaluate in {[str(d) for d in data]}")
    variants = list(next(iter(per_video.values())))
    return to_json({
        "default_variant": "auto",
        "variants": {"auto": "what `surglens analyze` uses: offline for a whole operation, clip otherwise"},
        "protocol": {"scheme": "trained model as is on the given data (say whether it was held out of training)",
                     "data": [str(d) for d in data], "videos": sorted(per_video), "relaxed_boundary_s": relaxed_s,
                     "scored": "the first label of every labelled second; all frames the data has are input"},
        "mean_over_videos": {v: summarise({n: r[v] for n, r in per_video.items()}) for v in variants},
        "per_video": {v: _json_rows({n: r[v] for n, r in per_video.items()}) for v in variants},
        "trained_held_out": model.training.get("held_out", []),
        "phase_names": names,
    })
