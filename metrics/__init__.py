"""Metric code: detection, tracking, phase, classification, segmentation (unit-tested on hand-made cases)."""
