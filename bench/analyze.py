"""End-to-end analysis throughput on the shared clips, against decode-only and a plain track loop.

For each real clip in ../shared/data/cholec-clips, measured in this one run, each in a fresh
process (so peak RSS is that job's own):
  decode    FrameReader at the sample rate, frames discarded (the floor any analysis pays)
  analyze   `surglens analyze` (every stage: quality, detection+tracking, phase, motion, annotated mp4),
            whole process; `pipeline_s` is the same run's own wall time from case.json (no start-up)
  track     a plain ultralytics `model.track(persist=True)` loop over EVERY frame (what a naive tool does)
Figures: video-seconds per wall-second, ratios to decode-only, peak RSS.

    .venv/bin/python -m bench.analyze [--sample-fps 1] [--clips N] [--out runs/bench/analyze.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from bench.decode import measure_child

REPO = Path(__file__).resolve().parent.parent
CLIPS = REPO.parent / "shared" / "data" / "cholec-clips"

DECODE = """
import sys
from video import FrameReader
n = sum(1 for _ in FrameReader(sys.argv[1], sample_fps=float(sys.argv[2])))
print(n)
"""

TRACK_LOOP = """
import sys
from models._ultralytics import load_ultralytics
from models.registry import resolve_model
from video import FrameReader
ul = load_ultralytics()
entry = resolve_model("detector")
model = ul.YOLO(str(entry.weights))
n = 0
for f in FrameReader(sys.argv[1], sample_fps="all"):
    model.track(f.rgb[..., ::-1], persist=True, imgsz=entry.metadata.get("input_size", 320), verbose=False, tracker="bytetrack.yaml")
    n += 1
print(n)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample-fps", type=float, default=1.0)
    ap.add_argument("--clips", type=int, default=6)
    ap.add_argument("--skip-track-loop", action="store_true")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "analyze.json"))
    args = ap.parse_args()
    clips = sorted(CLIPS.glob("*.mp4"))[: args.clips]
    if not clips:
        print(f"no clips in {CLIPS}", file=sys.stderr)
        return 1
    from video import probe

    py = sys.executable
    rows = []
    for clip in clips:
        info = probe(clip)
        with tempfile.TemporaryDirectory() as tmp:
            dec_s, dec_rss, _ = measure_child([py, "-c", DECODE, str(clip), str(args.sample_fps)])
            ana_s, ana_rss, _ = measure_child([py, "-m", "app.cli", "analyze", str(clip), "--out", f"{tmp}/case",
                                       "--sample-fps", str(args.sample_fps), "--quiet"])
            # The pipeline's own time (models loaded, video decoded once, every stage), without start-up.
            pipe_s = json.loads(Path(tmp, "case", "case.json").read_text())["wall_seconds"]
        row = {"clip": clip.name[:40], "video_s": info.duration_s, "decode_s": round(dec_s, 2), "analyze_s": round(ana_s, 2),
               "analyze_video_s_per_s": round(info.duration_s / ana_s, 2), "analyze_over_decode": round(ana_s / dec_s, 2),
               "pipeline_s": pipe_s, "pipeline_video_s_per_s": round(info.duration_s / pipe_s, 2),
               "decode_rss_mib": round(dec_rss), "analyze_rss_mib": round(ana_rss)}
        if not args.skip_track_loop:
            trk_s, trk_rss, _ = measure_child([py, "-c", TRACK_LOOP, str(clip)])
            row.update({"track_loop_s": round(trk_s, 2), "track_loop_video_s_per_s": round(info.duration_s / trk_s, 2),
                        "track_loop_over_analyze": round(trk_s / ana_s, 2), "track_loop_rss_mib": round(trk_rss)})
        rows.append(row)
        print(json.dumps(row))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"sample_fps": args.sample_fps, "cpu_count": os.cpu_count(), "rows": rows}, indent=2))
    keys = list(rows[0])
    print("\n" + " | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    return 0


if __name__ == "__main__":
    sys.exit(main())
