"""Anatomy stage: hepatocystic anatomy areas and critical-view-of-safety criteria, once per second.

Registered by analysis.analyze.build_stages (before the phase stage, which reads its areas). It
writes anatomy.parquet, one row per analysed second: class area fractions and cvs_c1..cvs_c3. When
the anatomy model is absent the stage does nothing and its summary says why (no crash).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from analysis.pipeline import Stage, StageContext
from analysis.results import ANATOMY
from video import Frame

# every_s=None decides at the start: every second for videos shorter than LONG_VIDEO_S, else every LONG_EVERY_S.
LONG_VIDEO_S = 600.0
LONG_EVERY_S = 5.0


class AnatomyStage(Stage):
    """Runs the anatomy model on the first analysed frame of every `every_s` seconds of video.

    `every_s=None`: 1 s below `LONG_VIDEO_S` of video, else `LONG_EVERY_S`. `latest` holds the label
    maps of the last batch's analysed frames by frame index (the annotate stage draws them).
    """

    name = "anatomy"
    version = "1"

    def __init__(self, model: str | Path | None = None, every_s: float | None = 1.0, threads: int | None = None):
        if every_s is not None and not every_s > 0:
            raise ValueError(f"every_s must be positive, got {every_s!r}")
        self.model_ref, self.threads = model, threads
        self.every_s_setting = None if every_s is None else float(every_s)
        self.every_s = self.every_s_setting or 1.0
        self._model: Any = None
        self._rows: list[dict[str, Any]] = []
        self._last_slot: int | None = None
        self.latest: dict[int, Any] = {}
        self.missing: str | None = None  # why the model is unavailable, when it is

    @property
    def model(self) -> Any:
        if self._model is None:
            from models.anatomy.model import AnatomyModel

            self._model = AnatomyModel(self.model_ref, threads=self.threads)
        return self._model

    def reset(self) -> None:
        self._rows, self._last_slot, self.latest = [], None, {}

    def start(self, ctx: StageContext) -> None:
        from models.registry import ModelNotFoundError

        duration = float(ctx.info.duration_s or 0.0)
        self.every_s = self.every_s_setting or (1.0 if duration < LONG_VIDEO_S else LONG_EVERY_S)
        try:
            self.model  # loads before any frame is decoded
            self.missing = None
        except (ModelNotFoundError, ValueError) as exc:
            self.missing = str(exc)

    def __call__(self, frames: Sequence[Frame]) -> None:
        self.latest = {}
        if self.missing is not None:
            return
        picked = []
        for frame in frames:
            slot = int(math.floor(frame.timestamp_s / self.every_s + 1e-9))
            if slot != self._last_slot:
                self._last_slot = slot
                picked.append(frame)
        if not picked:
            return
        for frame, result in zip(picked, self.model([f.rgb for f in picked], [f.index for f in picked])):
            self.latest[frame.index] = result.labels
            self._rows.append({
                "frame_index": frame.index, "timestamp_s": frame.timestamp_s,
                "second": int(math.floor(frame.timestamp_s)),
                **{f"area_{c}": round(v, 6) for c, v in result.areas.items()},
                **{f"cvs_{c.lower()}": round(v, 6) for c, v in result.cvs.items()},
                "cvs_all": round(result.cvs_achieved_probability, 6),
            })

    def finish(self, ctx: StageContext) -> dict[str, Any]:
        if self.missing is not None:
            return {"frames": 0, "skipped": f"no anatomy model: {self.missing}"}
        table = pd.DataFrame(self._rows)
        ctx.case.write_table(ANATOMY, table)
        ctx.outputs[self.name] = table
        if table.empty:
            return {"frames": 0, "table": ANATOMY}
        from models.anatomy.model import NOTE

        cvs = [c for c in table.columns if c.startswith("cvs_c")]
        reached = table[(table[cvs] >= 0.5).all(axis=1)]
        return {
            "frames": len(table), "table": ANATOMY, "every_s": self.every_s,
            "model": self.model.entry.name, "backend": getattr(self.model, "backend", "torch"),  # never a path on disk
            "mean_area": {c.removeprefix("area_"): round(float(table[c].mean()), 4) for c in table.columns if c.startswith("area_")},
            # None, not NaN (invalid JSON in case.json), where the model has no CVS head
            "max_cvs": {c: None if table[c].isna().all() else round(float(table[c].max()), 4) for c in cvs},
            "cvs_first_reached_s": None if reached.empty else float(reached["timestamp_s"].iloc[0]),
            "note": NOTE,
        }
