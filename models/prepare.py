"""Make, once, the copies of the shipped models that inference without torch reads.

The detector's OpenVINO export, the anatomy segmenter's IR and plain copies of the weights files
(models._openvino, models._state) are cached in the data folder the first time a model loads. Each is
made by a child process that imports torch, about 1 GB for a few seconds. `surglens serve` runs
`python -m models.prepare` before it starts the dashboard and the worker, so that spike happens alone
at the first start and never while a recording is being uploaded or analysed.
"""
from __future__ import annotations

import sys


def prepare() -> list[str]:
    """Load each shipped model the way analysis does (making what is missing); returns a line per model."""
    from models._openvino import openvino_available

    if not openvino_available():
        return ["openvino not installed: inference runs on torch"]
    lines = []
    from models.detector import Detector

    lines.append(f"detector: {Detector().backend}")
    try:
        from models.anatomy.model import AnatomyModel

        lines.append(f"anatomy: {AnatomyModel().backend}")
    except FileNotFoundError:  # a clone without the anatomy model
        lines.append("anatomy: no model")
    from models.phase import load_phase_model

    lines.append(f"phase: {type(load_phase_model()).__name__}")
    return lines


def main() -> int:
    try:
        for line in prepare():
            print(line)
    except Exception as exc:  # the worker loads (and reports) each model again; serving goes on
        print(f"preparing the models failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
