"""Surgical phase recognition from the detector's per-second tool evidence.

The shipped model is `TemporalPhaseModel` (models/phase/temporal.py: MS-TCN over tool evidence,
trained on 78 labelled Cholec80 operations); the earlier naive Bayes + workflow HMM (`PhaseModel`)
stays as the baseline its card compares with. `load_phase_model` reads either from a model folder.

    from models.phase import PhaseModel, DetectorEncoder
    model = PhaseModel.load()                      # shipped assets/models/phase
    encoder = DetectorEncoder()                    # the detector the model was trained with
    probs = model.predict(times_s, encoder(frames), full_procedure=True)   # PhaseProbabilities
    probs.segments()                               # [Segment(start_s, end_s, label, confidence)]

Training and evaluation: models.phase.train (behind `surglens train-phase` / `eval-phase`).
"""
from models.phase.encoder import DetectorEncoder
from models.phase.model import LabelledFeatures, OnlinePhaseRecognizer, PhaseModel, PhaseModelConfig
from models.phase.temporal import TemporalPhaseModel
from models.phase.timeline import PhaseProbabilities, Segment


def load_phase_model(ref=None):
    """The phase model in a folder or file (default: shipped): TemporalPhaseModel or the HMM PhaseModel."""
    import torch

    from models.registry import resolve_model

    entry = resolve_model(ref or "phase")
    try:
        kind = torch.load(entry.weights, map_location="cpu", weights_only=True).get("kind")
    except Exception as exc:  # unreadable: let the loaders word the error
        kind = None
        if not entry.weights.exists():
            raise ValueError(f"no phase model weights at {str(entry.weights)!r}") from exc
    return TemporalPhaseModel.load(entry.weights) if kind == "temporal" else PhaseModel.load(entry.weights)

__all__ = [
    "DetectorEncoder",
    "LabelledFeatures",
    "OnlinePhaseRecognizer",
    "PhaseModel",
    "PhaseModelConfig",
    "PhaseProbabilities",
    "Segment",
    "TemporalPhaseModel",
    "load_phase_model",
]
