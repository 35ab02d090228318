"""Decode speed and peak memory of each FrameReader backend, as ratios to `ffmpeg -f null`.

For every clip in ../shared/data/cholec-clips, in one run: the imageio-ffmpeg binary decodes the
file to the null muxer (`-threads 2`), and each reader backend (decord, opencv, pyav) reads it at
full rate ("all", RGB frames) and at 1 fps sampling. Every measurement runs in its own child
process, timed from before `FrameReader(...)` (probe and open included) to the last frame (ffmpeg:
process wall time), and its peak RSS comes from `os.wait4`. Each is repeated (`--repeat`,
interleaved) and the fastest round kept, because other jobs may share the CPU. A 6x longer video
(the first clip looped, packets copied; measured once) shows whether memory stays flat with
length. Ratios are reader time / ffmpeg time on the same file (lower is faster); the goal is
<= 1.5 for the default reader (auto backend, 1 fps). `pyav-nonref` decodes reference frames only
(skip_frame NONREF, what auto uses at 1 fps); "max late s" is how far after its target time k / F
the frame serving it lies (0 when every frame is decoded, up to a few frames when B-frames are skipped).

    .venv/bin/python -m bench.decode [--out runs/bench/decode.json] [--clips N] [--repeat 3] [--no-long]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIPS = REPO.parent / "shared" / "data" / "cholec-clips"
BACKENDS = [b for b, module in (("decord", "decord"), ("opencv", "cv2"), ("pyav", "av")) if importlib.util.find_spec(module)]
# pyav decoding every frame vs only reference frames (skip_frame NONREF, what `auto` uses at 1 fps) are measured apart.
BACKENDS += ["pyav-nonref"] if "pyav" in BACKENDS else []
MODES = {"all": "all", "1fps": "1.0"}


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _child(backend: str, sample: str, path: str) -> None:
    """Runs in the measured process: read every sampled frame, print JSON."""
    from video import FrameReader

    started = time.perf_counter()
    rate = None if sample == "all" else float(sample)
    nonref = backend == "pyav-nonref"
    reader = FrameReader(path, sample_fps=rate or "all", backend="pyav" if nonref else backend,
                         skip_nonref=nonref if rate else None)
    late = [frame.timestamp_s - round(frame.timestamp_s * rate) / rate if rate else 0.0 for frame in reader]
    seconds = time.perf_counter() - started
    print(json.dumps({"frames": len(late), "seconds": seconds, "backend": reader.backend, "warnings": reader.warnings,
                      "max_late_s": round(max(late, default=0.0), 4)}))


def measure_child(cmd: list[str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and stdout of a child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    out = proc.stdout.read().decode() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"measurement failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024.0, out


def measure_file(path: Path, frame_count: int, repeat: int) -> list[dict]:
    """ffmpeg and every backend x mode on one file, `repeat` interleaved rounds; the fastest round counts."""
    ffmpeg_cmd = [_ffmpeg(), "-v", "error", "-threads", "2", "-i", str(path), "-f", "null", "-"]
    best: dict[tuple[str, str], dict] = {}
    for _ in range(repeat):
        seconds, rss, _ = measure_child(ffmpeg_cmd)
        rounds = [("ffmpeg -f null", "all", {"frames": frame_count, "seconds": seconds}, rss)]
        for backend in BACKENDS:
            for mode, sample in MODES.items():
                _, rss, out = measure_child([sys.executable, "-m", "bench.decode", "--child", backend, sample, str(path)])
                rounds.append((backend, mode, json.loads(out.strip().splitlines()[-1]), rss))
        for reader, mode, result, rss in rounds:
            row = best.setdefault((reader, mode), {"file": path.name, "reader": reader, "mode": mode, "frames": result["frames"],
                                                   "seconds": result["seconds"], "rss_mib": rss, "warnings": result.get("warnings", []),
                                                   "max_late_s": result.get("max_late_s", 0.0)})
            row["seconds"], row["rss_mib"] = min(row["seconds"], result["seconds"]), max(row["rss_mib"], rss)
    ffmpeg_s = best[("ffmpeg -f null", "all")]["seconds"]
    for row in best.values():
        row["ratio"] = row["seconds"] / ffmpeg_s
    return list(best.values())


def _summarise(rows: list[dict]) -> list[dict]:
    summary = []
    for reader, mode in [("ffmpeg -f null", "all")] + [(b, m) for b in BACKENDS for m in MODES]:
        mine = [r for r in rows if r["reader"] == reader and r["mode"] == mode]
        ffmpeg = [r for r in rows if r["reader"] == "ffmpeg -f null" and r["file"] in {m["file"] for m in mine}]
        seconds = sum(r["seconds"] for r in mine)
        source_frames = sum(r["frames"] for r in ffmpeg)
        summary.append({"reader": reader, "mode": mode, "frames": sum(r["frames"] for r in mine), "seconds": round(seconds, 3),
                        "source_fps": round(source_frames / seconds, 1), "ratio": round(seconds / sum(r["seconds"] for r in ffmpeg), 3),
                        "peak_rss_mib": round(max(r["rss_mib"] for r in mine), 1),
                        "max_late_s": max(r.get("max_late_s", 0.0) for r in mine)})
    return summary


def _long_video(clip: Path, out_dir: Path, loops: int = 6) -> Path:
    """`clip` looped `loops` times by packet copy, in a temporary folder (real data stays out of the repo)."""
    path = out_dir / f"decode_long_{loops}x.mp4"
    loop = ["-stream_loop", str(loops - 1), "-i", str(clip), "-c", "copy", "-an"]
    subprocess.run([_ffmpeg(), "-v", "error", "-y", *loop, str(path)], check=True)
    return path


def _table(summary: list[dict], title: str) -> str:
    header = (f"{'reader':16s} {'mode':5s} {'frames':>7s} {'seconds':>8s} {'video fps':>10s} {'x ffmpeg':>9s} "
              f"{'peak RSS MiB':>13s} {'max late s':>11s}")
    lines = [title, header]
    for r in summary:
        lines.append(
            f"{r['reader']:16s} {r['mode']:5s} {r['frames']:7d} {r['seconds']:8.2f} "
            f"{r['source_fps']:10.1f} {r['ratio']:9.2f} {r['peak_rss_mib']:13.1f} {r.get('max_late_s', 0.0):11.3f}"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "decode.json")
    parser.add_argument("--clips", type=int, default=None, help="only the first N clips")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per measurement; the fastest is kept")
    parser.add_argument("--no-long", action="store_true", help="skip the 6x longer video")
    parser.add_argument("--child", nargs=3, metavar=("BACKEND", "SAMPLE", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    from video import probe

    clips = sorted(CLIPS.glob("*.mp4"))[: args.clips]
    if not clips:
        sys.exit(f"no clips found in {CLIPS}")
    load_before = os.getloadavg()
    rows = [row for clip in clips for row in measure_file(clip, probe(clip, content_hash=False).frame_count, args.repeat)]
    result = {"clips": [c.name for c in clips], "per_file": rows, "summary": _summarise(rows)}
    print(_table(result["summary"], f"{len(clips)} clips of {CLIPS} (854x480 H.264, 800 frames each)"))
    if not args.no_long:
        with tempfile.TemporaryDirectory() as tmp:
            long = _long_video(clips[0], Path(tmp))
            long_rows = measure_file(long, probe(long, content_hash=False).frame_count, repeat=1)  # for memory, timed once
        result["long"] = {"file": long.name, "rows": long_rows, "summary": _summarise(long_rows)}
        print()
        print(_table(result["long"]["summary"], f"{long.name}: {clips[0].name} looped 6x ({long_rows[0]['frames']} frames)"))
    result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                         "loadavg_before": load_before, "loadavg_after": os.getloadavg(), "ffmpeg": _ffmpeg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    load_after = result["machine"]["loadavg_after"][0]
    print(f"\nload average before/after: {load_before[0]:.2f} / {load_after:.2f} on {os.cpu_count()} CPUs; wrote {args.out}")


if __name__ == "__main__":
    main()
