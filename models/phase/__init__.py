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
    from models.registry import resolve_model

    entry = resolve_model(ref or "phase")
    return TemporalPhaseModel.load(entry.weights) if is_temporal(entry) else PhaseModel.load(entry.weights)


def is_temporal(entry) -> bool:
    """Whether a phase model entry is the temporal kind (tool confidences only), from its metadata when it
    has any, else from the weights file's own `kind`."""
    if entry.metadata.get("model_type"):
        return entry.metadata["model_type"] == "temporal"
    import torch

    try:
        return torch.load(entry.weights, map_location="cpu", weights_only=True).get("kind") == "temporal"
    except Exception:  # unreadable: the HMM loader words the error
        return False


__all__ = [
    "DetectorEncoder",
    "LabelledFeatures",
    "OnlinePhaseRecognizer",
    "PhaseModel",
    "PhaseModelConfig",
    "PhaseProbabilities",
    "Segment",
    "TemporalPhaseModel",
    "is_temporal",
    "load_phase_model",
]
