"""End-to-end analysis speed and memory on long real video, against decode-only and a plain track loop.

Builds its own inputs from the shared clips (../shared/data/cholec-clips, 854x480 H.264 25 fps) by
stream copy -- the ffmpeg concat demuxer over the clips repeated in turn, no re-encoding -- into
runs/bench/ (never committed): a long one (`--minutes`, default 60), a 10-minute one (memory must
not grow with length) and a short one for every-frame analysis (`--every-minutes`, default 2).
Then, in this one run, each measurement in a fresh child process (wall time and peak RSS from
`bench.decode.measure_child`):

  decode     `ffmpeg -threads 2 -f null` of the same file (the floor any analysis pays)
  sparse     `surglens analyze --sample-fps 1` (every stage), on the long and the 10-minute input
  every      `surglens analyze --sample-fps all [--detect-every K]` on the short input
  loop       a plain ultralytics `model.track(persist=True)` loop over every frame of the short input

and prints video-seconds per wall-second, ratios to decode-only, peak RSS, and each analysis' per-stage
profile from its case.json (probe+hash, decode, colour conversion/resizing, detector, tracker,
phase, quality, annotation drawing and encoding, proxy). Numbers are never asserted in tests.

    .venv/bin/python -m bench.analyze [--minutes 60] [--every-minutes 2] [--detect-every 1] [--extra '...']
                                      [--parts decode,sparse,every,loop] [--out runs/bench/analyze.json]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.decode import measure_child

REPO = Path(__file__).resolve().parent.parent
CLIPS = REPO.parent / "shared" / "data" / "cholec-clips"
BENCH_DIR = REPO / "runs" / "bench"
PARTS = ("decode", "sparse", "every", "loop")

TRACK_LOOP = """
import sys, time
from models._ultralytics import load_ultralytics
from models.registry import resolve_model
from video import FrameReader
ul = load_ultralytics()
entry = resolve_model("detector")
model = ul.YOLO(str(entry.weights))
n, t0 = 0, time.perf_counter()
for f in FrameReader(sys.argv[1], sample_fps="all"):
    model.track(f.rgb[..., ::-1], persist=True, imgsz=entry.metadata.get("input_size", 320), verbose=False, tracker="bytetrack.yaml")
    n += 1
print(n, time.perf_counter() - t0)
"""


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def build_input(minutes: float, out_dir: Path = BENCH_DIR) -> Path:
    """A >= `minutes`-long mp4 of the shared clips in turn, by stream copy (concat demuxer); reused if present."""
    clips = sorted(CLIPS.glob("*.mp4"))
    if not clips:
        raise FileNotFoundError(f"no clips in {CLIPS}")
    from video import probe

    clip_s = [probe(c, content_hash=False).duration_s for c in clips]
    repeats, total, order = 0, 0.0, []
    while total < minutes * 60:
        i = repeats % len(clips)
        order.append(clips[i])
        total += clip_s[i]
        repeats += 1
    path = out_dir / f"concat_{minutes:g}min.mp4"
    if path.exists() and abs(probe(path, content_hash=False).duration_s - total) < 1.0:
        return path
    out_dir.mkdir(parents=True, exist_ok=True)
    listing = out_dir / f"concat_{minutes:g}min.txt"
    listing.write_text("".join(f"file '{c}'\n" for c in order))
    tmp = path.with_suffix(".partial.mp4")
    subprocess.run([_ffmpeg(), "-v", "error", "-y", "-f", "concat", "-safe", "0", "-i", str(listing),
                    "-c", "copy", "-an", "-movflags", "+faststart", str(tmp)], check=True)
    tmp.replace(path)
    return path


def _profile(case: dict) -> dict:
    """Seconds per part of the analysis, from case.json's stage timings and profile."""
    stages, prof = case["stages"], case.get("profile", {})
    det = stages.get("detection", {})
    det_t = det.get("summary", {}).get("timings", {})
    ann_t = stages.get("annotate", {}).get("summary", {}).get("timings", {})
    out = {
        "probe_hash_s": prof.get("probe_hash_s"), "model_load_s": prof.get("stage_start_s"),
        "decode_thread_s": prof.get("decode_s"), "convert_resize_s": prof.get("convert_resize_s"),
        "wait_for_frames_s": prof.get("wait_for_frames_s"),
        "detector_s": det_t.get("detector_s"), "tracker_s": det_t.get("tracker_s"),
        "annotate_draw_s": ann_t.get("draw_s"), "annotate_encode_s": ann_t.get("encode_s"),
        # Every other stage's own time (phase features and timeline, quality, motion, anatomy, ...).
        **{f"{name}_s": v.get("seconds") for name, v in stages.items() if name not in ("detection", "annotate", "playback")},
        "proxy_s": stages.get("playback", {}).get("seconds"), "pipeline_wall_s": case.get("wall_seconds"),
        "detector_backend": det.get("summary", {}).get("detector", {}).get("backend"),
        "decode_backend": case.get("decode", {}).get("backend"),
    }
    return out


def _analyze(video: Path, info, sample_fps: str, detect_every: int, tag: str, extra: list[str]) -> dict:
    case_dir = BENCH_DIR / f"case_{tag}"
    shutil.rmtree(case_dir, ignore_errors=True)
    cmd = [sys.executable, "-m", "app.cli", "analyze", str(video), "--out", str(case_dir), "--sample-fps", sample_fps, "--quiet", *extra]
    if detect_every > 1:
        cmd += ["--detect-every", str(detect_every)]
    seconds, rss, _ = measure_child(cmd)
    case = json.loads((case_dir / "case.json").read_text())
    frames = case["sampling"]["frames_analysed"]
    shutil.rmtree(case_dir, ignore_errors=True)
    return {"what": f"analyze --sample-fps {sample_fps}" + (f" --detect-every {detect_every}" if detect_every > 1 else "")
            + "".join(f" {a}" for a in extra),
            "file": video.name, "video_s": info.duration_s, "frames": frames, "seconds": round(seconds, 1),
            "x_real_time": round(info.duration_s / seconds, 2), "analysed_fps": round(frames / seconds, 1),
            "peak_rss_mib": round(rss), "profile": _profile(case)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the long input (>= 60 for the issue's target)")
    ap.add_argument("--every-minutes", type=float, default=2.0, help="length of the every-frame input")
    ap.add_argument("--detect-every", type=int, default=1, help="--detect-every of the every-frame analysis")
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    ap.add_argument("--no-10min", action="store_true", help="skip the 10-minute input (memory vs length)")
    ap.add_argument("--extra", default="", help="more `surglens analyze` arguments, e.g. '--phase-model runs/phase/model'")
    ap.add_argument("--out", default=str(BENCH_DIR / "analyze.json"))
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    if unknown := set(parts) - set(PARTS):
        ap.error(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    import shlex

    from video import probe

    extra = shlex.split(args.extra)
    load_before = os.getloadavg()
    started = time.perf_counter()
    long = build_input(args.minutes)
    medium = None if args.no_10min or args.minutes <= 10 else build_input(10)
    short = build_input(args.every_minutes)
    infos = {p: probe(p, content_hash=False) for p in {long, short, *([medium] if medium else [])}}
    rows: list[dict] = []

    def decode(video: Path) -> dict:
        seconds, rss, _ = measure_child([_ffmpeg(), "-v", "error", "-threads", "2", "-i", str(video), "-f", "null", "-"])
        info = infos[video]
        return {"what": "ffmpeg -threads 2 -f null", "file": video.name, "video_s": info.duration_s, "frames": info.frame_count,
                "seconds": round(seconds, 1), "x_real_time": round(info.duration_s / seconds, 2), "peak_rss_mib": round(rss)}

    def emit(row: dict) -> dict:
        rows.append(row)
        print(json.dumps(row), flush=True)
        return row

    decoded: dict[str, float] = {}
    sparse_inputs = [v for v in (long, medium) if v]
    if "decode" in parts:
        for video in dict.fromkeys([*sparse_inputs, short]):
            decoded[video.name] = emit(decode(video))["seconds"]
    if "sparse" in parts:
        for video in sparse_inputs:
            row = _analyze(video, infos[video], "1", 1, "sparse", extra)
            if video.name in decoded:
                row["x_decode_only"] = round(row["seconds"] / decoded[video.name], 2)
            emit(row)
    if "every" in parts:
        row = _analyze(short, infos[short], "all", args.detect_every, "every", extra)
        if short.name in decoded:
            row["x_decode_only"] = round(row["seconds"] / decoded[short.name], 2)
        emit(row)
    if "loop" in parts:
        seconds, rss, out = measure_child([sys.executable, "-c", TRACK_LOOP, str(short)])
        frames = int(out.split()[0])
        emit({"what": "plain ultralytics model.track loop (torch, every frame)", "file": short.name,
              "video_s": infos[short].duration_s, "frames": frames, "seconds": round(seconds, 1),
              "x_real_time": round(infos[short].duration_s / seconds, 2), "analysed_fps": round(frames / seconds, 1),
              "peak_rss_mib": round(rss)})
    machine = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
               "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "bench_seconds": round(time.perf_counter() - started)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "machine": machine}, indent=2))
    print(render(rows, machine))
    return 0


def render(rows: list[dict], machine: dict) -> str:
    """The results as Markdown tables (what the README's performance section quotes)."""
    lines = ["| measurement | input | frames | wall s | x real time | frames/s | x decode-only | peak RSS MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['file']} ({r['video_s'] / 60:.1f} min) | {r['frames']} | {r['seconds']} | {r['x_real_time']} | "
                     f"{r.get('analysed_fps', '')} | {r.get('x_decode_only', '')} | {r['peak_rss_mib']} |")
    profiled = [r for r in rows if "profile" in r]
    if profiled:
        keys = [k for k in dict.fromkeys(k for r in profiled for k in r["profile"]) if not k.endswith("backend")]
        lines += ["", "| seconds in | " + " | ".join(f"{r['what']} ({r['video_s'] / 60:.0f} min)" for r in profiled) + " |",
                  "|---|" + "---|" * len(profiled)]
        for k in keys:
            lines.append(f"| {k.removesuffix('_s')} | " + " | ".join(str(r["profile"].get(k)) for r in profiled) + " |")
        lines.append("| backends | " + " | ".join(f"{r['profile']['decode_backend']} + {r['profile']['detector_backend']}" for r in profiled) + " |")
    lb, la = machine["loadavg_before"][0], machine["loadavg_after"][0]
    lines.append(f"\n{machine['cpus']} CPUs; load average before/after: {lb:.2f} / {la:.2f}; bench took {machine['bench_seconds']} s")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
