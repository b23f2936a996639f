"""Ask ffprobe what a media file really contains, before anything decodes it.

A download that "succeeded" can still be an HTML error page, an audio-only
file, a still image, an mp4 cut short before its index, or a small file that
declares hours of video or a picture of 16000x16000 pixels; decoding those
would cost minutes and gigabytes for nothing.  ffprobe reads only headers
(under the same CPU and memory limits as the decoder), and `check_limits`
refuses what the [limits] settings do not allow, each with its failure kind.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from fingerprints.decode import NO_LIMITS, DecodeLimits, run_limited
from monitor.failures import LimitExceeded, NotAVideo
from monitor.limits import Limits

FFPROBE = "ffprobe"


def probe(path: Path | str, *, timeout: float = 60, limits: DecodeLimits = NO_LIMITS) -> dict[str, Any]:
    """ffprobe's JSON (`format` and `streams`) for `path`; raises NotAVideo if it cannot read it."""
    cmd = [FFPROBE, "-v", "error", *limits.options(), "-print_format", "json", "-show_format", "-show_streams", "--",
           str(path)]
    try:
        done = run_limited(cmd, limits, timeout)
    except FileNotFoundError as exc:
        raise RuntimeError("ffprobe is not installed or not on PATH; install ffmpeg") from exc
    except subprocess.TimeoutExpired as exc:
        raise NotAVideo(f"ffprobe gave up on {Path(path).name} after {timeout:.0f} s", kind="decoder-limit") from exc
    if reason := limits.exceeded(done.returncode, done.stderr):
        raise NotAVideo(f"reading the file's headers: {reason}", kind="decoder-limit")
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        reason = (stderr.strip().splitlines() or ["unreadable file"])[-1].replace(f"{path}: ", "")
        raise NotAVideo(f"not a readable video ({' '.join(reason.split())})", kind="corrupt")
    return json.loads(done.stdout or b"{}")


def verify_video(path: Path | str, limits: Limits | None = None) -> dict[str, Any]:
    """Probe `path`, insist on a moving picture within `limits`; return the probe."""
    limits = limits or Limits()
    info = probe(path, limits=limits.decode)
    check_limits(info, limits, Path(path).name)
    return info


def video_streams(info: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in info.get("streams", []) if s.get("codec_type") == "video"
            and not (s.get("disposition") or {}).get("attached_pic")]


def check_limits(info: dict[str, Any], limits: Limits, name: str) -> None:
    """Refuse, before decoding, what is no video (no video stream, a still image) or too big to decode.

    Raises NotAVideo (kinds "not-a-video", "corrupt") or LimitExceeded
    ("too-long", "too-many-pixels", "too-many-frames").
    """
    videos = video_streams(info)
    if not videos:
        kinds = sorted({s.get("codec_type", "?") for s in info.get("streams", [])}) or ["no streams"]
        raise NotAVideo(f"{name} has no video stream (found: {', '.join(kinds)})")
    video = videos[0]
    container = str((info.get("format") or {}).get("format_name") or "")
    if is_still_image(info):
        raise NotAVideo(f"{name} is a still image ({container or video.get('codec_name')}), not a video")
    width, height = _int(video.get("width")), _int(video.get("height"))
    if not width or not height:  # probed with -max_pixels: the decoder would not open a larger picture
        raise LimitExceeded(f"{name}'s picture size cannot be read within max_pixels = {limits.max_pixels} "
                            "(a larger picture, or a damaged stream)", kind="too-many-pixels")
    if width * height > limits.max_pixels:
        raise LimitExceeded(f"{name} has {width}x{height} pixels, more than max_pixels = {limits.max_pixels}",
                            kind="too-many-pixels")
    duration = duration_of(info)
    if duration is None:
        raise NotAVideo(f"{name} has a video stream but no duration; the file is probably incomplete",
                        kind="corrupt")
    if duration > limits.max_duration_seconds:
        raise LimitExceeded(f"{name} lasts {_clock(duration)}, longer than max_duration_seconds = "
                            f"{limits.max_duration_seconds:g}", kind="too-long")
    frames = frame_count(video, duration)
    if frames is not None and frames > limits.max_frames:
        raise LimitExceeded(f"{name} has about {frames:,} frames, more than max_frames = {limits.max_frames:,}",
                            kind="too-many-frames")


def is_still_image(info: dict[str, Any]) -> bool:
    """An image format (PNG, JPEG, WebP... whatever its file name says), or a video of one frame."""
    formats = str((info.get("format") or {}).get("format_name") or "").split(",")
    if any(f == "image2" or f.endswith("_pipe") for f in formats):
        return True
    video = video_streams(info)[0]
    return bool((video.get("disposition") or {}).get("still_image")) or _int(video.get("nb_frames")) == 1


def frame_count(video: dict[str, Any], duration: float) -> int | None:
    """The frames a stream declares, else its average rate times `duration`; None if unknown."""
    if (declared := _int(video.get("nb_frames"))) > 0:
        return declared
    rate = _ratio(video.get("avg_frame_rate")) or _ratio(video.get("r_frame_rate"))
    return round(rate * duration) if rate else None


def duration_of(info: dict[str, Any]) -> float | None:
    """The container's duration, else the longest stream's, in seconds; None if unknown or zero."""
    candidates = [info.get("format", {}).get("duration")]
    candidates += [s.get("duration") for s in info.get("streams", [])]
    seconds = [_float(c) for c in candidates]
    longest = max((s for s in seconds if s is not None), default=0.0)
    return longest if longest > 0 else None


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}"


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number not in (float("inf"), float("-inf")) else None


def _ratio(text: Any) -> float | None:
    num, _, den = str(text or "").partition("/")
    top, bottom = _float(num), _float(den or "1")
    return top / bottom if top and bottom else None
