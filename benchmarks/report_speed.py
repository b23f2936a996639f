"""HTML report speed: cutting the matched frames many per ffmpeg process, against one process per frame.

The HTML report shows, for each appearance, up to four matched moments side
by side (a frame of the query and one of the stored video).  The first
renderer cut every one of those frames with its own ffmpeg process (a
process start, a file open, a seek back to a keyframe and a decode forward,
per frame; a frame shown twice was cut twice); that baseline is reproduced
here exactly (`cut_one_per_process`, the old `_thumbnail`, on the pairs the old
renderer chose) and measured in the same run as the renderer of today
(keyframes listed, pairs chosen just after them, all frames cut by one or two
processes: `monitor.reports.frames`), as batching alone would do it (the old
pairs, many per process), and as `render_html` as a whole.

Two stores of ten videos each, matched by a query that is not stored:
- `chair`: the seven chair files (real phone footage; PROVENANCE_CHAIR_DIR can
  point at the full-size originals) and three edits of the original;
  the query is a crop of the original;
- `hd`: a generated 60 s 30 fps source scaled up to 1280x720 (H.264 with
  x264's default keyframe interval, up to 250 frames) and nine re-upload
  edits of it; the query is a crop.

CPU time is user + system of this process and its reaped children (ffmpeg),
from getrusage deltas; each figure is the best of --repeat passes.  The store
is built once per corpus under benchmarks/.cache/report_speed (fingerprinting
is not measured here).

    python benchmarks/report_speed.py [--corpus chair|hd|all] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from corpora import chair_dir  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.jobs.earliest import find_earliest  # noqa: E402
from monitor.jobs.ingest import ingest_file  # noqa: E402
from monitor.reports import render_report  # noqa: E402
from monitor.reports.frames import Frame, cut_frames, keyframes  # noqa: E402
from monitor.reports.html import pairs_shown  # noqa: E402
from monitor.synth.samples import EDITS, make_edit, make_source_clip  # noqa: E402
from monitor.workspace import Workspace  # noqa: E402
from storage.records import NewPost  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "report_speed"
CROP = "crop=iw*0.8:ih*0.8"


def cut_one_per_process(path: Path, at: float, mirror: bool = False) -> str | None:
    """The first renderer's `_thumbnail`, unchanged: one ffmpeg process per frame."""
    vf = "scale=200:-2" + (",hflip" if mirror else "")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{max(0.0, at):.3f}", "-i", f"file:{path.resolve()}",
           "-frames:v", "1", "-vf", vf, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "5", "pipe:1"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out).decode() if out else None


def _footage(corpus: str) -> tuple[list[Path], Path]:
    """Ten videos to store and a query, made once and kept in the cache."""
    root = CACHE / corpus / "footage"
    root.mkdir(parents=True, exist_ok=True)
    if corpus == "chair":
        chair = chair_dir()
        original = chair / "chair-orig-22-sd-bar.mp4"
        stored = sorted(chair.glob("chair-*.mp4"))
        for name, video_filter in (("mirror", "hflip"), ("letterbox", "pad=iw:trunc(ih*0.7)*2:0:(oh-ih)/2:black"),
                                   ("grey", "hue=s=0")):
            target = root / f"chair-{name}.mp4"
            if not target.exists():
                make_edit(original, target, video_filter)
            stored.append(target)
    else:
        original = root / "source-720p.mp4"
        if not original.exists():  # generated small (the scenes are slow to render), then scaled up
            small = make_source_clip(root / "source-small.mp4", seed=11, duration=60.0, size="320x180", fps=30)
            make_edit(small, original, "scale=1280:720:flags=bicubic")
        stored = [original]
        edits = {**{name: (EDITS[name], None, None) for name in ("mirror", "letterbox", "blurpad_9x16", "grey",
                                                                  "speed_1.25x")},
                 "excerpt-a": (None, 5.0, 20.0), "excerpt-b": (None, 30.0, 25.0),
                 "mirror-excerpt": ("hflip", 12.0, 30.0), "small": ("scale=640:-2", None, None)}
        for name, (video_filter, start, duration) in edits.items():
            target = root / f"{name}.mp4"
            if not target.exists():
                make_edit(original, target, video_filter, start, duration)
            stored.append(target)
    query = root / "query-crop.mp4"
    if not query.exists():
        make_edit(original, query, CROP)
    return stored, query


def _workspace(corpus: str, stored: list[Path]) -> Workspace:
    data_dir = CACHE / corpus / "store"
    marker = data_dir / "complete"
    if not marker.exists():
        shutil.rmtree(data_dir, ignore_errors=True)
    ws = Workspace.open(load_config(None, data_dir, None))
    if not marker.exists():
        for n, path in enumerate(stored):
            ingest_file(ws, path, NewPost(media_id=0, url=f"https://example.org/{corpus}/{path.name}",
                                          platform="example", published_at=None))
            print(f"  stored {n + 1}/{len(stored)} {path.name}", file=sys.stderr, flush=True)
        marker.write_text("ok\n")
    return ws


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _best(work, repeat: int) -> tuple[float, float, object]:
    cpu, wall, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        c0, w0 = _cpu(), time.perf_counter()
        result = work()
        cpu, wall = min(cpu, _cpu() - c0), min(wall, time.perf_counter() - w0)
    return cpu, wall, result


def old_spread(items: list, n: int) -> list:
    """The first renderer's choice of pairs to show: evenly by index."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def old_frames(report, ws) -> list[tuple[Path, float, bool]]:
    """Every frame the first renderer cut (both frames of each pair shown, a frame shown twice cut twice)."""
    cuts = []
    for a in report.appearances:
        stored = ws.store.path(a.media.store_path)
        if a.match is None:
            middle = (a.media.duration or report.query_duration) / 2
            cuts += [(report.query_file, middle, False), (stored, middle, False)]
            continue
        for p in old_spread(a.match.pairs, 4):
            cuts += [(report.query_file, p.query_time, False), (stored, p.stored_time, a.match.mirrored)]
    return cuts


def new_frames(report, ws) -> tuple[int, int]:
    """Today's way: keyframes listed, pairs chosen just after them, all frames cut in one or two processes."""
    stored = [ws.store.path(a.media.store_path) for a in report.appearances]
    keys = keyframes([report.query_file, *stored])
    frames = [f for a, path in zip(report.appearances, stored) for p in pairs_shown(report, a, path, keys)
              for f in (p.query, p.stored)]
    return len(frames), len(cut_frames(frames, keys))


def batched_old_choice(report, ws) -> tuple[int, int]:
    """Many frames per process, but the first renderer's pairs and no keyframe list: what batching alone gives."""
    frames = [Frame.of(path, at) for path, at, _ in old_frames(report, ws)]
    return len(frames), len(cut_frames(frames))


def measure(corpus: str, repeat: int) -> dict:
    stored, query = _footage(corpus)
    ws = _workspace(corpus, stored)
    try:
        report = find_earliest(ws, query)
        cuts = old_frames(report, ws)
        old = _best(lambda: [cut_one_per_process(*cut) for cut in cuts], repeat)
        batched = _best(lambda: batched_old_choice(report, ws), repeat)
        new = _best(lambda: new_frames(report, ws), repeat)
        page = _best(lambda: render_report("html", report, ws.store), repeat)
        text = _best(lambda: render_report("text", report, ws.store), repeat)
    finally:
        ws.close()
    return {"corpus": corpus, "appearances": len(report.appearances), "frames_shown": len(cuts),
            "old_frames_cut": sum(1 for uri in old[2] if uri), "new_frames_cut": new[2][1],
            "old_cpu_s": round(old[0], 3), "old_wall_s": round(old[1], 3),
            "batched_cpu_s": round(batched[0], 3), "batched_wall_s": round(batched[1], 3),
            "new_cpu_s": round(new[0], 3), "new_wall_s": round(new[1], 3),
            "html_render_cpu_s": round(page[0], 3), "html_render_wall_s": round(page[1], 3),
            "html_bytes": len(page[2]), "text_render_wall_s": round(text[1], 3),
            "cpu_ratio": round(old[0] / new[0], 1), "wall_ratio": round(old[1] / new[1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", choices=("chair", "hd", "all"), default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure(c, args.repeat) for c in (("chair", "hd") if args.corpus == "all" else (args.corpus,))]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"# {platform.python_version()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"ffmpeg {subprocess.run(['ffmpeg', '-version'], capture_output=True, text=True).stdout.split()[2]}")
    print("| corpus | appearances | frames shown | one process per frame: CPU s / wall s "
          "| batched, first renderer's pairs: CPU s / wall s | today (keyframes + batched): CPU s / wall s "
          "| CPU ratio | wall ratio | whole HTML render: CPU s / wall s | text render wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['corpus']} | {r['appearances']} | {r['frames_shown']} "
              f"| {r['old_cpu_s']:.2f} / {r['old_wall_s']:.2f} | {r['batched_cpu_s']:.2f} / {r['batched_wall_s']:.2f} "
              f"| {r['new_cpu_s']:.2f} / {r['new_wall_s']:.2f} | {r['cpu_ratio']}x | {r['wall_ratio']}x "
              f"| {r['html_render_cpu_s']:.2f} / {r['html_render_wall_s']:.2f} | {r['text_render_wall_s']:.3f} |")


if __name__ == "__main__":
    main()
