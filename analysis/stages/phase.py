"""Phase stage: per-second phase probabilities, the phase timeline, durations and transitions."""
from __future__ import annotations

import json
import warnings
from typing import Any, Sequence

import numpy as np

from analysis.pipeline import Stage, StageContext
from analysis.results import PHASE_CHOLEC80, PHASE_PROBS, PHASE_SEGMENTS
from video import Frame

# A video at least this long is taken as a whole operation (starts in Preparation, durations
# scaled to its length); shorter ones as clips that may start in any phase. Cholec80's shortest
# operation lasts about 12 minutes.
FULL_PROCEDURE_MIN_S = 600.0


class PhaseStage(Stage):
    """Encodes each analysed frame with the detector, then decodes the phase timeline at `finish`.

    `weights`: phase model (None = shipped assets/models/phase). `detector`: a loaded `Detector` to
    share (its own forward pass, same weights in memory); else one is loaded from
    `detector_weights` (None = the shipped detector). `mode`: "offline" (whole video, default) or
    "online" (causal, as a live view would see it). `full_procedure`: None decides by length
    (>= FULL_PROCEDURE_MIN_S), True/False forces it.
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
            from models.phase.model import PhaseModel

            self._model = PhaseModel.load(self.weights)
        return self._model

    @property
    def encoder(self):
        if self._encoder is None:
            from models.phase.encoder import DEFAULT_PRESENCE_CONF, DetectorEncoder

            conf = self.model.encoder.get("presence_conf", DEFAULT_PRESENCE_CONF)
            self._encoder = DetectorEncoder(self.detector_weights, detector=self._shared_detector, presence_conf=conf)
        return self._encoder

    def reset(self) -> None:
        self._times, self._features = [], []

    def start(self, ctx: StageContext) -> None:
        self._encoder = self.encoder  # loads the phase model and the detector before any frame is decoded

    def __call__(self, frames: Sequence[Frame]) -> None:
        if not frames:
            return
        self._features.append(self.encoder([f.rgb for f in frames]))
        self._times += [float(f.timestamp_s) for f in frames]

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        from models.datasets.cholec80 import write_cholec80_phases

        model, encoder = self.model, self.encoder
        times = np.asarray(self._times, dtype=np.float64)
        features = np.concatenate(self._features) if self._features else np.zeros((0, model.input_dim), np.float32)
        duration = float(ctx.info.duration_s or 0.0)
        n_seconds = max(int(np.ceil(duration)), int(np.floor(times.max())) + 1 if len(times) else 0)
        if n_seconds == 0 or len(times) == 0:
            raise ValueError("no frames were analysed, so there is no phase timeline")
        full = self.full_procedure if self.full_procedure is not None else duration >= FULL_PROCEDURE_MIN_S
        expected = model.encoder.get("detector_sha256")
        actual = encoder.identity["detector_sha256"]
        matches = expected is None or expected == actual
        if not matches:
            warnings.warn(
                f"phase model expects detector weights {expected[:12]}..., got {actual[:12]}...: "
                "retrain it with `surglens train-phase` (see assets/models/phase/MODEL_CARD.md)",
                stacklevel=2,
            )
        probs = model.predict(times, features, n_seconds, mode=self.mode, full_procedure=full)
        segments = probs.segments()
        probs.to_frame().to_parquet(ctx.out_dir / PHASE_PROBS, index=False)
        (ctx.out_dir / PHASE_SEGMENTS).write_text(json.dumps([s.to_dict() for s in segments], indent=1))
        frame_count = ctx.info.frame_count or int(round(duration * ctx.info.fps))
        write_cholec80_phases(ctx.out_dir / PHASE_CHOLEC80, probs.second, probs.phase_id, ctx.info.fps, frame_count)
        ctx.outputs[self.name] = {
            "seconds": probs.second,
            "probs": probs.probs,
            "phase_id": probs.phase_id,
            "phase_names": list(probs.phase_names),
            "segments": [s.to_dict() for s in segments],
            "probabilities": probs,
        }
        return {
            "model": {"version": model_version(self.weights), "mode": self.mode, "full_procedure": full,
                      "detector_matches": matches},
            "seconds": n_seconds,
            "frames": len(times),
            "segments": len(segments),
            "durations_s": probs.durations_s(),
            "transitions": probs.transitions(),
            "mean_confidence": round(float(probs.probs[np.arange(len(probs)), probs.phase_id].mean()), 4),
        }


def model_version(weights: str | None) -> str | None:
    """The `version` in the phase model's metadata.json, if any."""
    from models.registry import resolve_model

    return resolve_model(weights or "phase").metadata.get("version")
