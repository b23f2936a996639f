"""Fingerprinting speed: seconds of video per CPU second, against two baselines.

The issue asks how our fingerprinter's cost compares with (a) the floor for
anything that reads every frame, a plain ``ffmpeg`` decode at native
resolution, and (b) Meta's vPDQ, the reference video hash, at its default of
one hash per second (and, when it is installed, every frame).

CPU time counts child processes: ``fingerprint_video`` and the ffmpeg baseline
spend most of their time in an ffmpeg subprocess, vPDQ decodes in-process
through libav on its own threads.  Each measurement is the delta of
``getrusage(RUSAGE_SELF)`` plus ``getrusage(RUSAGE_CHILDREN)`` (children are
reaped before the second reading) around one pass over all files, so
interpreter start-up and imports are excluded for every method alike.  Each
pass is repeated ``--repeat`` times and the best (lowest) CPU and wall times
are kept, since other work on the machine only ever adds time.

vPDQ is a baseline, not a dependency of provenance.  To install it (it builds
from source against the system's libav):

    apt-get install -y pkg-config libavcodec-dev libavformat-dev libavutil-dev \
        libswscale-dev libavdevice-dev libavfilter-dev
    pip install vpdq

Run from the repository root:

    python benchmarks/fingerprint_speed.py [--files GLOB] [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from corpora import chair_dir  # noqa: E402

from fingerprints.decode import stream_info  # noqa: E402
from fingerprints.video import fingerprint_video  # noqa: E402

try:
    import vpdq
except ImportError:
    vpdq = None

DEFAULT_FILES = str(chair_dir() / "chair-*.mp4")
VPDQ_INSTALL = (
    "vpdq is not installed, so its rows are skipped. To add them:\n"
    "  apt-get install -y pkg-config libavcodec-dev libavformat-dev libavutil-dev "
    "libswscale-dev libavdevice-dev libavfilter-dev\n"
    "  pip install vpdq"
)


@dataclass
class Row:
    method: str
    video_seconds: float
    cpu_seconds: float
    wall_seconds: float
    video_s_per_cpu_s: float = 0.0
    ratio_vs_vpdq_default: float | None = None
    ratio_vs_ffmpeg_decode: float | None = None


def _cpu_seconds() -> float:
    """User + system time of this process and of every child it has reaped."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        ru = resource.getrusage(who)
        total += ru.ru_utime + ru.ru_stime
    return total


def _ffmpeg_decode(path: str) -> None:
    # Video only (-an): the floor is reading every frame, and our fingerprinter skips audio too.
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", path, "-an", "-f", "null", "-"], check=True)


def _vpdq(seconds_per_hash: float) -> Callable[[str], None]:
    def run(path: str) -> None:
        if not vpdq.computeHash(input_video_filename=path, seconds_per_hash=seconds_per_hash):
            raise RuntimeError(f"vpdq produced no hash for {path}")
    return run


def methods() -> dict[str, Callable[[str], object]]:
    found: dict[str, Callable[[str], object]] = {
        "provenance fingerprint_video": fingerprint_video,
        "provenance, frame hashes only (no media signals)": lambda path: fingerprint_video(path, media=[]),
        "provenance, as a query (keypoint query views)": lambda path: fingerprint_video(path, query=True),
        "ffmpeg decode (-f null)": _ffmpeg_decode,
    }
    if vpdq is not None:
        found["vPDQ default (1 hash/s)"] = _vpdq(1)
        found["vPDQ every frame"] = _vpdq(0)
    return found


def measure(name: str, run: Callable[[str], object], files: list[str], video_seconds: float, repeat: int) -> Row:
    cpu, wall = [], []
    for _ in range(repeat):
        c0, w0 = _cpu_seconds(), time.perf_counter()
        for path in files:
            run(path)
        wall.append(time.perf_counter() - w0)
        cpu.append(_cpu_seconds() - c0)
    best = min(cpu)
    return Row(name, video_seconds, best, min(wall), video_seconds / best)


def add_ratios(rows: list[Row]) -> None:
    by_name = {r.method: r for r in rows}
    for r in rows:
        for attr, base in (("ratio_vs_vpdq_default", "vPDQ default (1 hash/s)"),
                           ("ratio_vs_ffmpeg_decode", "ffmpeg decode (-f null)")):
            if base in by_name:
                setattr(r, attr, r.video_s_per_cpu_s / by_name[base].video_s_per_cpu_s)


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "ffmpeg": ffmpeg,
        "vpdq": _dist_version("vpdq") if vpdq is not None else None,
    }


def _dist_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def print_table(rows: list[Row]) -> None:
    def ratio(x: float | None) -> str:
        return f"{x:.2f}x" if x is not None else "n/a"
    header = ("method", "video s", "CPU s", "wall s", "video s/CPU s", "vs vPDQ default", "vs ffmpeg decode")
    cells = [header] + [(r.method, f"{r.video_seconds:.1f}", f"{r.cpu_seconds:.2f}", f"{r.wall_seconds:.2f}",
                         f"{r.video_s_per_cpu_s:.1f}", ratio(r.ratio_vs_vpdq_default),
                         ratio(r.ratio_vs_ffmpeg_decode)) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default=DEFAULT_FILES, help="glob of videos to fingerprint (default: the chair set)")
    parser.add_argument("--repeat", type=int, default=3, help="passes per method; the best is kept (default 3)")
    parser.add_argument("--json", action="store_true", help="print the machine and rows as JSON instead of a table")
    args = parser.parse_args()

    info = machine()  # before measuring, so the load average says what else was running
    files = sorted(glob.glob(args.files))
    if not files:
        parser.error(f"no file matches {args.files}")
    video_seconds = sum(stream_info(Path(f)).duration or 0.0 for f in files)
    rows = [measure(name, run, files, video_seconds, max(1, args.repeat)) for name, run in methods().items()]
    add_ratios(rows)

    if args.json:
        print(json.dumps({"machine": info, "files": files, "repeat": args.repeat,
                          "rows": [asdict(r) for r in rows]}, indent=2))
        return 0
    print(f"{len(files)} files, {video_seconds:.1f} s of video, best of {args.repeat}; "
          f"{info['nproc']} CPUs ({info['cpu']}), load {info['load_average_at_start'][0]:.2f} at start")
    print(f"{info['ffmpeg']}; vpdq {info['vpdq'] or 'not installed'}\n")
    print_table(rows)
    if vpdq is None:
        print("\n" + VPDQ_INSTALL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
