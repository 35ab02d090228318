"""Surgical anatomy segmentation and critical-view-of-safety (CVS) assessment on Endoscapes-style frames."""
