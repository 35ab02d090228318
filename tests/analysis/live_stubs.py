"""Stand-ins for the detector and the phase model in live-session tests: fast, deterministic, no weights."""
from __future__ import annotations

import time

import numpy as np

from models.detections import Detections
from models.taxonomy import load_taxonomy

TOOLS = load_taxonomy().tool_names
PHASES = load_taxonomy().phase_names


class StubDetector:
    """A Grasper box moving right on every frame, after `delay` seconds of 'inference'."""

    class_names = list(TOOLS)

    def __init__(self, delay: float = 0.0):
        self.delay, self.calls = delay, 0

    def __call__(self, frames):
        self.calls += len(frames)
        if self.delay:
            time.sleep(self.delay)
        x = 2.0 * (self.calls % 20)
        return [Detections([[10 + x, 10, 40 + x, 40]], [0.9], [TOOLS.index("Grasper")]) for _ in frames]


class StubRecognizer:
    def __init__(self, log: list):
        self.log = log

    def reset(self):
        self.log.clear()

    def __call__(self, evidence):
        self.log.append(np.asarray(evidence).copy())
        probs = np.full(len(PHASES), 0.1 / (len(PHASES) - 1))
        probs[1] = 0.9  # CalotTriangleDissection
        return probs


class StubPhaseModel:
    tool_names = tuple(TOOLS)
    phase_names = tuple(PHASES)

    def __init__(self):
        self.evidence: list = []

    def online(self):
        return StubRecognizer(self.evidence)
