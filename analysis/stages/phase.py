"""Phase stage: per-second phase probabilities, the phase timeline, durations and transitions."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from analysis.pipeline import Stage, StageContext
from models.phase.timeline import LOW_CONFIDENCE, PhaseProbabilities, Segment
from video import Frame

# A video at least this long is taken as a whole operation (starts in Preparation, durations
# scaled to its length); shorter ones as clips that may start in any phase. Cholec80's shortest
# operation lasts about 12 minutes.
FULL_PROCEDURE_MIN_S = 600.0


@dataclass(frozen=True)
class PhaseOutput:
    """What the phase stage leaves for later stages: the per-second probabilities and their segments."""

    probabilities: PhaseProbabilities
    segments: tuple[Segment, ...]


class PhaseStage(Stage):
    """Encodes each analysed frame with the detector, then decodes the phase timeline at `finish`.

    `weights`: phase model (None = shipped assets/models/phase). `detector`: a loaded `Detector` to
    share (its own forward pass, same weights in memory); else one is loaded from
    `detector_weights` (None = the shipped detector). `mode`: "offline" (whole video, default) or
    "online" (causal, as a live view would see it). `full_procedure`: None decides (the temporal
    model from the evidence: whole operation or clip; the HMM by length), True/False forces it.
    """

    name = "phase"
    version = "1"

    def __init__(
        self,
        weights: str | None = None,
        detector: Any = None,
        detector_weights: str | None = None,
        mode: str = "offline",
        full_procedure: bool | None = None,
    ):
        if mode not in ("offline", "online"):
            raise ValueError(f"phase mode must be 'offline' or 'online', got {mode!r}")
        self.weights, self.detector_weights = weights, detector_weights
        self.mode, self.full_procedure = mode, full_procedure
        self._shared_detector = detector
        self._model: Any = None
        self._encoder: Any = None
        self._times: list[float] = []
        self._features: list[np.ndarray] = []

    @property
    def model(self):
        if self._model is None:
            from models.phase import load_phase_model

            self._model = load_phase_model(self.weights)
        return self._model

    @property
    def temporal(self) -> bool:
        """True for the temporal model, which needs only the per-frame tool confidences."""
        from models.phase.temporal import TemporalPhaseModel

        return isinstance(self.model, TemporalPhaseModel)

    @property
    def encoder(self):
        if self._encoder is None:
            from models.phase.encoder import DEFAULT_PRESENCE_CONF, DetectorEncoder

            conf = (self.model.encoder or {}).get("presence_conf", DEFAULT_PRESENCE_CONF)
            self._encoder = DetectorEncoder(self.detector_weights, detector=self._shared_detector, presence_conf=conf)
        return self._encoder

    def reset(self) -> None:
        self._times, self._features = [], []

    def start(self, ctx: StageContext) -> None:
        self._encoder = self.encoder  # loads the phase model and the detector before any frame is decoded

    def __call__(self, frames: Sequence[Frame]) -> None:
        if not frames:
            return
        rgb = [f.rgb for f in frames]
        if self.temporal:  # tool confidences only: 7 floats a frame, flat memory on long videos
            self._features.append(self.encoder.presence(self.encoder.detector(rgb)))
        else:
            self._features.append(self.encoder(rgb))
        self._times += [float(f.timestamp_s) for f in frames]

    def finish(self, ctx: StageContext) -> dict[str, Any]:

        model, encoder = self.model, self.encoder
        times = np.asarray(self._times, dtype=np.float64)
        width = len(model.tool_names) if self.temporal else model.input_dim
        features = np.concatenate(self._features) if self._features else np.zeros((0, width), np.float32)
        duration = float(ctx.info.duration_s or 0.0)
        n_seconds = max(int(np.ceil(duration)), int(np.floor(times.max())) + 1 if len(times) else 0)
        if n_seconds == 0 or len(times) == 0:
            raise ValueError("no frames were analysed, so there is no phase timeline")
        expected = (model.encoder or {}).get("detector_sha256")
        actual = encoder.identity["detector_sha256"]
        matches = expected is None or expected == actual
        if not matches:
            warnings.warn(
                f"phase model expects detector weights {expected[:12]}..., got {actual[:12]}...: "
                "retrain it with `surglens train-phase` (see assets/models/phase/MODEL_CARD.md)",
                stacklevel=2,
            )
        ratio = None
        if self.temporal:
            from models.phase.evidence import per_second

            evidence = per_second(times, features, n_seconds)
            if self.mode == "online":
                variant = "online"
            elif self.full_procedure is None:
                variant = model.choose_variant(evidence)
            else:
                variant = "offline" if self.full_procedure else "clip"
            ratio = self._anatomy_ratio(ctx, n_seconds) if variant == "clip" else None
            probs = model.predict(evidence, variant, ratio)
            full = variant in ("offline", "online")  # the online model counts time from the operation's start
            low = model.config.low_confidence
        else:
            full = self.full_procedure if self.full_procedure is not None else duration >= FULL_PROCEDURE_MIN_S
            variant = ("offline" if self.mode == "offline" else "online") + ("_full" if full else "")
            probs = model.predict(times, features, n_seconds, mode=self.mode, full_procedure=full)
            low = LOW_CONFIDENCE
        segments = probs.segments()
        frame_count = ctx.info.frame_count or int(round(duration * ctx.info.fps))
        ctx.case.write_phases(probs, segments, ctx.info.fps, frame_count)
        ctx.outputs[self.name] = PhaseOutput(probs, tuple(segments))
        return {
            "model": {"version": model_version(self.weights), "mode": self.mode, "full_procedure": full,
                      "variant": variant, "detector_matches": matches,
                      "anatomy_evidence": self.temporal and variant == "clip" and ratio is not None},
            "seconds": n_seconds,
            "frames": len(times),
            "segments": len(segments),
            "durations_s": probs.durations_s(),
            "transitions": probs.transitions(),
            "mean_confidence": round(float(probs.probs[np.arange(len(probs)), probs.phase_id].mean()), 4),
            "low_confidence_threshold": low,
            "low_confidence_segments": [s.to_dict() for s in segments if s.confidence < low],
        }


    def _anatomy_ratio(self, ctx: StageContext, n_seconds: int) -> np.ndarray | None:
        """The anatomy stage's class areas (it finishes first) as Calot-vs-gallbladder-dissection evidence."""
        table = ctx.outputs.get("anatomy")
        evidence = getattr(self.model, "calot_evidence", None)
        if evidence is None or table is None or len(table) == 0:
            return None
        columns = [f"area_{c}" for c in evidence.classes]
        if any(c not in table for c in columns):
            return None
        areas = [dict(zip(evidence.classes, row)) for row in table[columns].to_numpy(dtype=float)]
        return self.model.anatomy_log_ratio(table["timestamp_s"].to_numpy(dtype=float), areas, n_seconds)


def model_version(weights: str | None) -> str | None:
    """The `version` in the phase model's metadata.json, if any."""
    from models.registry import resolve_model

    return resolve_model(weights or "phase").metadata.get("version")
