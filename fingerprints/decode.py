"""Streaming decode of a video into small greyscale analysis frames.

ffmpeg does the decoding and the down-scaling in one process and hands us raw
frames through a pipe, at a fixed analysis rate.  Nothing is buffered beyond
one frame, so a ten-minute 1080p file costs the same memory as a ten-second
one.  A fixed output rate makes timestamps exact (``i / fps``) and keeps the
sampling phase of a query independent of its source frame rate.

Files come from strangers, so every ffmpeg and ffprobe process can run under
`DecodeLimits` (CPU seconds and address space): a file built to make the
decoder spin or allocate gigabytes ends as a `VideoDecodeError` of kind
"decoder-limit" instead of taking the machine.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]


class VideoDecodeError(Exception):
    """The file is not a readable video; the message is one line for people.

    `kind` is "corrupt", "not-a-video" or "decoder-limit" (see `monitor.failures`).
    """

    def __init__(self, message: str, kind: str = "corrupt") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class DecodeLimits:
    """Resource limits of one ffmpeg or ffprobe process; None means no limit.

    `max_seconds` stops a decode whose output runs longer than that, whatever
    the file declared (kind "too-long"); `max_pixels` is handed to the decoder
    itself (ffmpeg's -max_pixels), which then refuses to allocate a larger
    picture, even one that appears mid-stream.
    """

    cpu_seconds: float | None = None
    memory_mb: int | None = None
    max_seconds: float | None = None
    max_pixels: int | None = None

    def options(self) -> list[str]:
        """ffmpeg/ffprobe input options for these limits."""
        return ["-max_pixels", str(int(self.max_pixels))] if self.max_pixels else []

    def apply(self, pid: int) -> None:
        """Limit the running process `pid` (Linux; elsewhere only through `preexec`).

        Set from the parent right after the process starts rather than in a
        `preexec_fn`, which is unsafe when the parent has threads (the daemon
        does); the process has had microseconds to run by then.
        """
        if resource is None or not hasattr(resource, "prlimit"):
            return
        resource.prlimit(pid, resource.RLIMIT_CORE, (0, 0))  # a SIGXCPU must not leave a core file
        if self.cpu_seconds:  # soft = hard: SIGKILL at the limit (ffmpeg would catch SIGXCPU and exit "normally")
            seconds = max(1, int(self.cpu_seconds))
            resource.prlimit(pid, resource.RLIMIT_CPU, (seconds, seconds))
        if self.memory_mb:
            size = int(self.memory_mb) * 2**20
            resource.prlimit(pid, resource.RLIMIT_AS, (size, size))

    def exceeded(self, returncode: int | None, stderr: bytes) -> str | None:
        """Why the process ended, if it ran into these limits; None otherwise."""
        if returncode is None or returncode == 0:
            return None
        if self.cpu_seconds and returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            return f"decoding needed more than {self.cpu_seconds:g} CPU seconds (decode_cpu_seconds)"
        if self.memory_mb and returncode == 127:  # the loader could not map ffmpeg's libraries
            return f"the decoder cannot even start within {self.memory_mb} MiB of memory (decode_memory_mb)"
        if self.memory_mb and (os.strerror(errno.ENOMEM).encode() in stderr
                               or returncode in (-signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS)):
            return f"decoding needed more than {self.memory_mb} MiB of memory (decode_memory_mb)"
        return None


NO_LIMITS = DecodeLimits()


def run_limited(cmd: list[str], limits: DecodeLimits, timeout: float) -> subprocess.CompletedProcess:
    """`subprocess.run(cmd)` capturing output, under `limits` and a wall-clock `timeout`."""
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        try:
            limits.apply(proc.pid)
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@dataclass(frozen=True)
class VideoStreamInfo:
    width: int  # display width, after rotation and sample aspect ratio
    height: int
    fps: float | None
    duration: float | None
    start_time: float


def _ffprobe_json(path: Path, limits: DecodeLimits = NO_LIMITS) -> dict:
    cmd = [
        "ffprobe", "-v", "error", *limits.options(), "-print_format", "json",
        "-show_format", "-show_streams", "--", str(path),
    ]
    try:
        proc = run_limited(cmd, limits, timeout=120)
    except FileNotFoundError as exc:  # pragma: no cover - depends on the machine
        raise VideoDecodeError("ffprobe not found: install ffmpeg (apt-get install ffmpeg)") from exc
    except subprocess.TimeoutExpired as exc:
        raise VideoDecodeError("ffprobe gave up on the file after 120 s", kind="decoder-limit") from exc
    if reason := limits.exceeded(proc.returncode, proc.stderr):
        raise VideoDecodeError(reason, kind="decoder-limit")
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


def stream_info(path: Path, probe: dict | None = None, limits: DecodeLimits = NO_LIMITS) -> VideoStreamInfo:
    """Describe the first video stream, or raise `VideoDecodeError`."""
    probe = probe if probe is not None else _ffprobe_json(path, limits)
    videos = [s for s in probe.get("streams", []) if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    if not videos:
        raise VideoDecodeError("not a video: no video stream found", kind="not-a-video")
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
            state: dict, limits: DecodeLimits) -> Iterator[tuple[float, np.ndarray]]:
    """Run ffmpeg once and yield its frames; its complaints end up in ``state["err"]``.

    ``state["returncode"]`` is set when ffmpeg ran to its end (not when the caller stopped early).
    """
    rate = f"fps={fps}:eof_action=pass" if eof_pass else f"fps={fps}"
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-threads", "1",
        *(["-skip_frame", "bidir", "-skip_loop_filter", "all"] if fast_decode else []), *limits.options(),
        "-i", f"file:{Path(path).resolve()}", "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", f"{rate},{_scale_filter(long_side)}",
        "-pix_fmt", "gray", "-strict", "-1", "-f", "yuv4mpegpipe", "pipe:1",
    ]
    count = 0
    with tempfile.TemporaryFile() as errors:  # a file, not a pipe: ffmpeg never blocks on its complaints
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
        try:
            limits.apply(proc.pid)
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
            proc.stdout.close()
            try:
                state["returncode"] = proc.wait(timeout=30)  # its output ended: it is exiting
            except subprocess.TimeoutExpired:
                pass
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            errors.seek(0)
            state["err"] = errors.read()


def iter_gray_frames(
    path: Path, fps: float, long_side: int, info: VideoStreamInfo | None = None, fast_decode: bool = False,
    limits: DecodeLimits = NO_LIMITS,
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(timestamp_seconds, gray_uint8_frame)`` at `fps` frames per second.

    ffmpeg writes YUV4MPEG ("mono"), whose header carries the frame size, so
    no separate probe is needed.  With `fast_decode` the decoder drops
    B-frames (nothing else references them in common encodes) and skips the
    deblocking filter (its effect is gone after down-scaling); the fixed-rate
    output then repeats the nearest earlier frame, so a timestamp can be up to
    two source frames late.  Decoding is single-threaded: the most video per
    CPU second, and several files can be fingerprinted side by side.

    Raises `VideoDecodeError` when nothing can be decoded, when the decode
    stops short (a "partial file", or well short of `info.duration`), or when
    ffmpeg ran into `limits` (kind "decoder-limit").
    """
    state: dict = {}
    count = 0
    most = int(limits.max_seconds * fps) + 1 if limits.max_seconds else None
    for item in _decode(path, fps, long_side, fast_decode, False, state, limits):
        if most is not None and count >= most:
            raise VideoDecodeError(f"the video runs longer than {limits.max_seconds:g} s (max_duration_seconds)",
                                   kind="too-long")
        yield item
        count += 1
    if count == 0:
        # A clip shorter than one output frame (a single frame, say): the fps filter emits
        # nothing unless it passes the last frame at the end of the file.  Only then: passing
        # it always would add a frame to the end of every fingerprint.
        for item in _decode(path, fps, long_side, fast_decode, True, state, limits):
            yield item
            count += 1
    err = state.get("err", b"")
    if reason := limits.exceeded(state.get("returncode"), err):
        raise VideoDecodeError(reason, kind="decoder-limit")
    complaint = _last_line(err, path)
    if count == 0:
        raise VideoDecodeError(f"not a readable video: {complaint or 'no frame could be decoded'}",
                               kind="corrupt" if complaint else "not-a-video")
    decoded = count / fps
    declared = (info.duration if info else None) or 0.0
    if b"partial file" in err or (declared > 2.0 and decoded < 0.8 * declared - 1.0):
        raise VideoDecodeError(
            f"truncated or corrupt video: decoded {decoded:.1f} s"
            + (f" of the {declared:.1f} s it declares" if declared else "")
            + (f" ({complaint})" if complaint else "")
        )
