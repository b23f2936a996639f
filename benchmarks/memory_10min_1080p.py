"""Peak memory while fingerprinting a 10-minute 1080p30 H.264 video.

The issue's target is under 500 MB peak while fingerprinting a ten-minute
1080p video: ``fingerprint_video`` streams small grey frames out of an ffmpeg
subprocess and hashes them in bounded chunks, so memory should not grow with
the video's length.  This script checks it.

The test video is made once and cached in ``benchmarks/.cache/`` (git-ignored):
the real chair original is scaled and pillar-boxed to 1920x1080 at 30 fps and
encoded with libx264 once (about 22 s), then that segment is looped with stream
copy to ten minutes, so generation is cheap but the result is a genuine
1080p30 H.264 stream whose every frame ffmpeg must decode.

Fingerprinting runs in a fresh Python process (this script, with
``--worker``), which reports:

* its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``), and the RSS it had
  after importing numpy, OpenCV and provenance, before any frame;
* the ffmpeg decoder's peak RSS (``VmHWM``), read from ``/proc`` while ffmpeg
  runs.  ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is reported too, but on Linux
  a child spawned by vfork/exec inherits its parent's high-water mark, so that
  figure is at least the Python process's RSS at spawn time and is only an
  upper bound for ffmpeg itself.

Run from the repository root:

    python benchmarks/memory_10min_1080p.py [--minutes 10] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from corpora import chair_dir  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache"
SOURCE = chair_dir() / "chair-orig-22-sd-bar.mp4"
TARGET_MB = 500


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def test_video(minutes: float, source: Path) -> Path:
    """The cached 1080p30 video of `minutes` minutes, made on first use."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{source.stem}-1080p30-{minutes:g}min.mp4"
    if out.exists():
        return out
    segment = CACHE / f"{source.stem}-1080p30-segment.mp4"
    if not segment.exists():
        _ffmpeg("-i", str(source), "-an",
                "-vf", "scale=-2:1080:flags=bicubic,pad=1920:1080:(ow-iw)/2:0,fps=30,format=yuv420p",
                "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", str(segment))
    partial = out.with_suffix(".part.mp4")
    _ffmpeg("-stream_loop", "-1", "-i", str(segment), "-t", str(minutes * 60), "-c", "copy", str(partial))
    partial.rename(out)
    return out


def _vm_hwm_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return None


class _ChildPeakWatcher(threading.Thread):
    """Polls the VmHWM of every ffmpeg child of this process until stopped."""

    def __init__(self, interval: float = 0.2):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak_kb = 0
        self.stop = threading.Event()

    @staticmethod
    def _ffmpeg_children() -> list[int]:
        me, pids = os.getpid(), []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            comm, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
            if comm == "ffmpeg" and int(rest[1]) == me:  # fields after comm: state, ppid, ...
                pids.append(int(stat.parent.name))
        return pids

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            for pid in self._ffmpeg_children():
                self.peak_kb = max(self.peak_kb, _vm_hwm_kb(pid) or 0)


def worker(path: Path) -> dict:
    """Fingerprint `path` in this (fresh) process and describe its memory and time."""
    sys.path.insert(0, str(REPO))
    from fingerprints.video import fingerprint_video

    after_imports_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    watcher = _ChildPeakWatcher()
    watcher.start()
    cpu0 = time.process_time()
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.perf_counter()
    fp = fingerprint_video(path)
    wall = time.perf_counter() - wall0
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu0
    watcher.stop.set()
    watcher.join()
    return {
        "video_seconds": fp.duration,
        "frames_decoded": fp.frames_decoded,
        "frames_hashed": len(fp.frames),
        "wall_seconds": wall,
        "python_cpu_seconds": cpu,
        "children_cpu_seconds": (ch1.ru_utime + ch1.ru_stime) - (ch0.ru_utime + ch0.ru_stime),
        "python_rss_after_imports_mb": after_imports_kb / 1024,
        "python_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "ffmpeg_peak_rss_mb": watcher.peak_kb / 1024,
        "children_ru_maxrss_mb": ch1.ru_maxrss / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the test video (default 10)")
    parser.add_argument("--source", type=Path, default=SOURCE,
                        help="clip looped into the test video (default: the chair original)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON instead of text")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)  # internal: the measured child
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker(args.worker)))
        return 0

    t0 = time.perf_counter()
    video = test_video(args.minutes, args.source)
    made = time.perf_counter() - t0
    child = subprocess.run([sys.executable, __file__, "--worker", str(video)],
                           capture_output=True, text=True, check=True)
    result = json.loads(child.stdout)
    result["video"] = str(video.relative_to(REPO))
    result["combined_peak_rss_mb_upper_bound"] = result["python_peak_rss_mb"] + result["ffmpeg_peak_rss_mb"]
    result["target_mb"] = TARGET_MB
    result["within_target"] = result["combined_peak_rss_mb_upper_bound"] < TARGET_MB

    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    r = result
    print(f"video: {r['video']} ({r['video_seconds']:.1f} s, 1920x1080 30 fps H.264; ready in {made:.1f} s)")
    print(f"fingerprinted in {r['wall_seconds']:.1f} s wall, CPU {r['python_cpu_seconds']:.1f} s Python "
          f"+ {r['children_cpu_seconds']:.1f} s ffprobe+ffmpeg; {r['frames_decoded']} analysis frames, "
          f"{r['frames_hashed']} hashed")
    print(f"Python peak RSS:  {r['python_peak_rss_mb']:7.1f} MB  "
          f"(after imports, before any frame: {r['python_rss_after_imports_mb']:.1f} MB)")
    print(f"ffmpeg peak RSS:  {r['ffmpeg_peak_rss_mb']:7.1f} MB  "
          f"(RUSAGE_CHILDREN ru_maxrss, an upper bound: {r['children_ru_maxrss_mb']:.1f} MB)")
    print(f"sum of peaks:     {r['combined_peak_rss_mb_upper_bound']:7.1f} MB  "
          f"target < {TARGET_MB} MB: {'met' if r['within_target'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
