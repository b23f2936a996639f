"""Streaming decode of a video into small greyscale analysis frames.

ffmpeg does the decoding and the down-scaling in one process and hands us raw
frames through a pipe, at a fixed analysis rate.  Nothing is buffered beyond
one frame, so a ten-minute 1080p file costs the same memory as a ten-second
one.  A fixed output rate makes timestamps exact (``i / fps``) and keeps the
sampling phase of a query independent of its source frame rate.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class VideoDecodeError(Exception):
    """The file is not a readable video; the message is one line for people."""


@dataclass(frozen=True)
class VideoStreamInfo:
    width: int  # display width, after rotation and sample aspect ratio
    height: int
    fps: float | None
    duration: float | None
    start_time: float


def _ffprobe_json(path: Path) -> dict:
    cmd = [
        "ffprobe", "-v", "error", "-print_format", "json",
        "-show_format", "-show_streams", "--", str(path),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    except FileNotFoundError as exc:  # pragma: no cover - depends on the machine
        raise VideoDecodeError("ffprobe not found: install ffmpeg (apt-get install ffmpeg)") from exc
    if proc.returncode != 0:
        msg = _last_line(proc.stderr, path) or "ffprobe could not read it"
        raise VideoDecodeError(f"not a readable video: {msg}")
    try:
        return json.loads(proc.stdout or b"{}")
    except json.JSONDecodeError as exc:
        raise VideoDecodeError("not a readable video: ffprobe gave no usable answer") from exc


def _last_line(blob: bytes, path: Path | None = None) -> str:
    """ffmpeg's last complaint, on one line, without the (possibly hostile) file name."""
    text = blob.decode("utf-8", "replace")
    if path is not None:
        text = text.replace(f"file:{Path(path).resolve()}", "input").replace(str(path), "input")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[-1].split())[:300] if lines else ""


def _ratio(text: str | None) -> float | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den) if float(den) else None
        return float(text)
    except ValueError:
        return None


def stream_info(path: Path, probe: dict | None = None) -> VideoStreamInfo:
    """Describe the first video stream, or raise `VideoDecodeError`."""
    probe = probe if probe is not None else _ffprobe_json(path)
    videos = [s for s in probe.get("streams", []) if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if not videos:
        raise VideoDecodeError("not a video: no video stream found")
    v = videos[0]
    width, height = int(v.get("width") or 0), int(v.get("height") or 0)
    if width <= 0 or height <= 0:
        raise VideoDecodeError("not a readable video: the video stream has no picture size")
    sar = _ratio(v.get("sample_aspect_ratio")) or 1.0
    width = max(1, round(width * sar))
    rotation = 0
    for side in v.get("side_data_list", []) or []:
        if "rotation" in side:
            rotation = int(side["rotation"])
    if rotation % 180:
        width, height = height, width
    duration = _ratio(v.get("duration")) or _ratio((probe.get("format") or {}).get("duration"))
    fps = _ratio(v.get("avg_frame_rate")) or _ratio(v.get("r_frame_rate"))
    start = _ratio(v.get("start_time")) or 0.0
    return VideoStreamInfo(width=width, height=height, fps=fps, duration=duration, start_time=start)


def _scale_filter(long_side: int) -> str:
    """Scale to the display aspect (sample aspect ratio applied), long side at most `long_side`, even sizes."""
    fit = f"min(1,{long_side}/max(iw*sar,ih))"
    return (f"scale=w='max(2,2*round(iw*sar*{fit}/2))':h='max(2,2*round(ih*{fit}/2))':flags=area,"
            "setsar=1")


def _read_exactly(stream, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def _decode(path: Path, fps: float, long_side: int, fast_decode: bool, eof_pass: bool,
            state: dict[str, bytes]) -> Iterator[tuple[float, np.ndarray]]:
    """Run ffmpeg once and yield its frames; its complaints end up in ``state["err"]``."""
    rate = f"fps={fps}:eof_action=pass" if eof_pass else f"fps={fps}"
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", "1",
        *(["-skip_frame", "bidir", "-skip_loop_filter", "all"] if fast_decode else []),
        "-i", f"file:{Path(path).resolve()}", "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", f"{rate},{_scale_filter(long_side)}",
        "-pix_fmt", "gray", "-strict", "-1", "-f", "yuv4mpegpipe", "pipe:1",
    ]
    count = 0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg never blocks on its complaints
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        try:
            assert proc.stdout is not None
            header = proc.stdout.readline(256)
            fields = dict((f[0], f[1:]) for f in header.decode("ascii", "replace").split()[1:] if f)
            if header.startswith(b"YUV4MPEG2") and "W" in fields and "H" in fields:
                w, h = int(fields["W"]), int(fields["H"])
                while True:
                    marker = proc.stdout.readline(256)
                    buf = _read_exactly(proc.stdout, w * h) if marker.startswith(b"FRAME") else b""
                    if len(buf) < w * h:
                        break
                    yield count / fps, np.frombuffer(buf, dtype=np.uint8).reshape(h, w)
                    count += 1
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            errors.seek(0)
            state["err"] = errors.read()


def iter_gray_frames(
    path: Path, fps: float, long_side: int, info: VideoStreamInfo | None = None, fast_decode: bool = False
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(timestamp_seconds, gray_uint8_frame)`` at `fps` frames per second.

    ffmpeg writes YUV4MPEG ("mono"), whose header carries the frame size, so
    no separate probe is needed.  With `fast_decode` the decoder drops
    B-frames (nothing else references them in common encodes) and skips the
    deblocking filter (its effect is gone after down-scaling); the fixed-rate
    output then repeats the nearest earlier frame, so a timestamp can be up to
    two source frames late.  Decoding is single-threaded: the most video per
    CPU second, and several files can be fingerprinted side by side.

    Raises `VideoDecodeError` when nothing can be decoded, or when the decode
    stops short: a "partial file", or well short of `info.duration`.
    """
    state: dict[str, bytes] = {}
    count = 0
    for item in _decode(path, fps, long_side, fast_decode, False, state):
        yield item
        count += 1
    if count == 0:
        # A clip shorter than one output frame (a single frame, say): the fps filter emits
        # nothing unless it passes the last frame at the end of the file.  Only then: passing
        # it always would add a frame to the end of every fingerprint.
        for item in _decode(path, fps, long_side, fast_decode, True, state):
            yield item
            count += 1
    err = state.get("err", b"")
    complaint = _last_line(err, path)
    if count == 0:
        raise VideoDecodeError(f"not a readable video: {complaint or 'no frame could be decoded'}")
    decoded = count / fps
    declared = (info.duration if info else None) or 0.0
    if b"partial file" in err or (declared > 2.0 and decoded < 0.8 * declared - 1.0):
        raise VideoDecodeError(
            f"truncated or corrupt video: decoded {decoded:.1f} s"
            + (f" of the {declared:.1f} s it declares" if declared else "")
            + (f" ({complaint})" if complaint else "")
        )
