"""Surgical phase recognition: detector features per frame, a naive Bayes head, a phase-order HMM.

    from models.phase import PhaseModel, DetectorEncoder
    model = PhaseModel.load()                      # shipped assets/models/phase
    encoder = DetectorEncoder()                    # the detector the model was trained with
    probs = model.predict(times_s, encoder(frames), full_procedure=True)   # PhaseProbabilities
    probs.segments()                               # [Segment(start_s, end_s, label, confidence)]

Training and evaluation: models.phase.train (behind `surglens train-phase` / `eval-phase`).
"""
from models.phase.encoder import DetectorEncoder
from models.phase.model import LabelledFeatures, OnlinePhaseRecognizer, PhaseModel, PhaseModelConfig
from models.phase.timeline import PhaseProbabilities, Segment

__all__ = [
    "DetectorEncoder",
    "LabelledFeatures",
    "OnlinePhaseRecognizer",
    "PhaseModel",
    "PhaseModelConfig",
    "PhaseProbabilities",
    "Segment",
]
