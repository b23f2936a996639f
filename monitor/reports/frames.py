"""Cut the matched frames the HTML report shows, many per ffmpeg process.

One ffmpeg process per frame (the first way this was done) paid a process
start, a file open and a decode from the previous keyframe for every frame:
19–36 s for a report of 5–9 matches.  Here every wanted frame is cut once (a
frame shown twice is cut once; a mirrored copy is flipped by the page, not
cut again), already at the size the page shows it, and all of them come out
of one or two ffmpeg processes, one seek per frame.

Exact frames are only as cheap as their distance from the keyframe before
them: with a long keyframe interval a seek decodes seconds of video.  So
`keyframes` first lists every file's keyframes (one process that decodes
keyframes only, to 16x16), the report picks, among the many matched pairs,
ones that sit just after keyframes (`since_keyframe`), and frames of one
file that share a keyframe interval share one seek, the decoder running on
from one to the next (`split` into one `trim` per frame).  Without keyframe
times (a file ffmpeg cannot list), frames closer than `DECODE_ON_SECONDS`
share a seek.  `benchmarks/report_speed.py` measures both ways.
"""

from __future__ import annotations

import bisect
import shutil
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

THUMB_BOX = 200  # frames are cut to fit this many pixels square: the size the report shows them at
DECODE_ON_SECONDS = 4.0  # wanted frames closer than this in one file share a seek
MAX_INPUTS = 12  # file openings per ffmpeg process
PROCESSES = 2  # ffmpeg processes at once
TIMEOUT_SECONDS = 120
FAST_DECODE = ["-skip_loop_filter", "all", "-flags2", "fast"]  # decoder options that skip deblocking
FAST_TAIL_SECONDS = 0.25  # ... and the shorter decode past a run's last frame they go with


@dataclass(frozen=True)
class Frame:
    """A frame to cut: the first frame at or after `at` seconds of `path` (as ffmpeg's accurate seek finds it)."""

    path: Path
    at: float

    @classmethod
    def of(cls, path: Path, at: float) -> Frame:
        return cls(Path(path), round(max(0.0, at), 3))


Keyframes = dict[Path, list[float]]
_EPSILON = 0.002  # seconds: a frame this close after a keyframe is at it


def _keyframe_batch(paths: list[Path]) -> Keyframes:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"]
    for path in paths:
        cmd += ["-threads", "1", "-skip_frame", "nokey", "-i", f"file:{path.resolve()}"]
    for i in range(len(paths)):
        cmd += ["-map", f"{i}:v:0"]
    cmd += ["-fps_mode", "passthrough", "-enc_time_base", "-1", "-s", "16x16", "-c:v", "rawvideo",
            "-f", "framecrc", "-"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return {}
    if done.returncode != 0:
        return {}
    base: dict[int, float] = {}
    times: dict[int, list[float]] = defaultdict(list)
    for line in done.stdout.splitlines():
        if line.startswith("#tb "):  # "#tb 0: 1/15360"
            stream, _, fraction = line[4:].partition(": ")
            num, _, den = fraction.partition("/")
            base[int(stream)] = int(num) / int(den)
        elif line and not line.startswith("#"):
            fields = line.split(",")
            stream = int(fields[0])
            times[stream].append(round(int(fields[2]) * base[stream], 3))
    return {path: sorted(times[i]) for i, path in enumerate(paths) if times[i]}


def keyframes(paths: Iterable[Path]) -> Keyframes:
    """The keyframe times of each file, in seconds as ffmpeg's -ss counts them; files it cannot read are left out.

    Only keyframes are decoded, to 16x16: a small share of decoding the files.
    """
    files = sorted({Path(p) for p in paths if Path(p).is_file()})
    if not files:
        return {}
    count = max(min(PROCESSES, len(files)), -(-len(files) // MAX_INPUTS))
    batches = [files[i::count] for i in range(count)]
    found: Keyframes = {}
    with ThreadPoolExecutor(max_workers=PROCESSES) as pool:
        for part in pool.map(_keyframe_batch, batches):
            found.update(part)
    if len(files) > 1:  # a file ffmpeg cannot read fails its whole batch: the others are listed one by one
        for path in files:
            if path not in found:
                found.update(_keyframe_batch([path]))
    return found


def since_keyframe(times: list[float] | None, at: float) -> float:
    """Seconds to decode from the last keyframe at or before `at` (0 when the keyframes are not known)."""
    if not times:
        return 0.0
    i = bisect.bisect_right(times, at + _EPSILON)
    return at - times[i - 1] if i else at


def _runs(frames: list[Frame], times: list[float] | None) -> list[list[Frame]]:
    """Frames of one file in time order, cut where a keyframe lies between two (or they are far apart)."""
    runs: list[list[Frame]] = []
    for f in sorted(frames, key=lambda f: f.at):
        if runs:
            last = runs[-1][-1].at
            if times:
                fresh = bisect.bisect_right(times, f.at + _EPSILON) > bisect.bisect_right(times, last + _EPSILON)
            else:
                fresh = f.at - last > DECODE_ON_SECONDS
            if not fresh:
                runs[-1].append(f)
                continue
        runs.append([f])
    return runs


def _command(runs: list[list[Frame]], out: Path, box: int, fast: bool = False) -> tuple[list[str], list[Frame]]:
    """One ffmpeg command cutting every frame of `runs` into out/<k>.jpg, and the frames in k order."""
    fit = (f"scale=iw*sar:ih,setsar=1,scale={box}:{box}:force_original_aspect_ratio=decrease"
           ":force_divisible_by=2")
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"]
    graph, order = [], []
    for i, run in enumerate(runs):
        start = run[0].at
        tail = FAST_TAIL_SECONDS if fast else 1.0  # decoded past the run's last frame, so that it is there
        cmd += ["-threads", "1", *FAST_DECODE * fast, "-ss", f"{start:.3f}", "-t", f"{run[-1].at - start + tail:.3f}",
                "-i", f"file:{run[0].path.resolve()}"]
        labels = [f"[c{len(order) + j}]" for j in range(len(run))]
        graph.append(f"[{i}:v:0]split={len(run)}{''.join(labels)}" if len(run) > 1 else f"[{i}:v:0]null{labels[0]}")
        for label, f in zip(labels, run):
            graph.append(f"{label}trim=start={f.at - start:.3f},trim=end_frame=1,{fit}[o{len(order)}]")
            order.append(f)
    cmd += ["-filter_complex", ";".join(graph)]
    for k in range(len(order)):
        cmd += ["-map", f"[o{k}]", "-frames:v", "1", "-c:v", "mjpeg", "-q:v", "5", "-f", "image2",
                str(out / f"{k}.jpg")]
    return cmd, order


def _cut(runs: list[list[Frame]], box: int, fast: bool = False) -> dict[Frame, bytes]:
    out = Path(tempfile.mkdtemp(prefix="provenance-frames-"))
    try:
        cmd, order = _command(runs, out, box, fast)
        try:
            subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_SECONDS, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return {}
        cut = {}
        for k, f in enumerate(order):
            path = out / f"{k}.jpg"
            if path.exists() and path.stat().st_size:
                cut[f] = path.read_bytes()
        return cut
    finally:
        shutil.rmtree(out, ignore_errors=True)


def cut_frames(frames: list[Frame], keys: Keyframes | None = None, box: int = THUMB_BOX,
               fast: bool = False) -> dict[Frame, bytes]:
    """JPEG bytes of each frame that could be cut (missing files and frames past the end are left out).

    `keys` (from `keyframes`) lets frames of one keyframe interval share a seek; `fast` decodes without the
    deblocking filter (`FAST_DECODE`: for frames compared by numbers, not shown).
    """
    by_file: dict[Path, set[Frame]] = defaultdict(set)
    for f in frames:
        if f.path.is_file():
            by_file[f.path].add(f)
    runs = [run for path in sorted(by_file) for run in _runs(list(by_file[path]), (keys or {}).get(path))]
    if not runs:
        return {}
    while len(runs) < PROCESSES and max(map(len, runs)) > 1:  # one seek more, so the processes share the decoding
        longest = max(runs, key=len)
        runs.remove(longest)
        runs += [longest[:len(longest) // 2], longest[len(longest) // 2:]]
    batches = max(min(PROCESSES, len(runs)), -(-len(runs) // MAX_INPUTS))
    # spread the frames evenly over the processes: the longest runs first, each to the lightest batch
    loads: list[list[list[Frame]]] = [[] for _ in range(batches)]
    for run in sorted(runs, key=len, reverse=True):
        min((b for b in loads if len(b) < MAX_INPUTS), key=lambda b: (sum(map(len, b)), len(b))).append(run)
    cut: dict[Frame, bytes] = {}
    with ThreadPoolExecutor(max_workers=PROCESSES) as pool:
        for part in pool.map(lambda batch: _cut(batch, box, fast), [b for b in loads if b]):
            cut.update(part)
    missing = [run for run in runs if any(f not in cut for f in run)]
    for run in missing:  # a file ffmpeg choked on spoils only its own frames: try them one run at a time
        cut.update(_cut([run], box, fast))
    return cut
