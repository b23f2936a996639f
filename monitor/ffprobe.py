"""Ask ffprobe what a media file really contains.

A download that "succeeded" can still be an HTML error page, an audio-only
file or an mp4 cut short before its index; ffprobe is the judge of whether we
hold a video.  Kept small so metadata capture can reuse `probe`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from monitor.sources.base import NotAVideo

FFPROBE = "ffprobe"


def probe(path: Path | str, *, timeout: float = 60) -> dict[str, Any]:
    """ffprobe's JSON (`format` and `streams`) for `path`; raises NotAVideo if it cannot read it."""
    try:
        done = subprocess.run(
            [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise RuntimeError("ffprobe is not installed or not on PATH; install ffmpeg") from exc
    except subprocess.TimeoutExpired as exc:
        raise NotAVideo(f"ffprobe gave up on {Path(path).name} after {timeout:.0f} s") from exc
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["unreadable file"])[-1].replace(f"{path}: ", "")
        raise NotAVideo(f"not a readable video ({' '.join(reason.split())})")
    return json.loads(done.stdout or "{}")


def verify_video(path: Path | str) -> dict[str, Any]:
    """Probe `path` and insist on a video stream and a positive duration; return the probe."""
    info = probe(path)
    name = Path(path).name
    videos = [s for s in info.get("streams", []) if s.get("codec_type") == "video"
              and not s.get("disposition", {}).get("attached_pic")]
    if not videos:
        kinds = sorted({s.get("codec_type", "?") for s in info.get("streams", [])}) or ["no streams"]
        raise NotAVideo(f"{name} has no video stream (found: {', '.join(kinds)})")
    if duration_of(info) is None:
        raise NotAVideo(f"{name} has a video stream but no duration; the file is probably incomplete")
    return info


def duration_of(info: dict[str, Any]) -> float | None:
    """The container's duration, else the longest stream's, in seconds; None if unknown or zero."""
    candidates = [info.get("format", {}).get("duration")]
    candidates += [s.get("duration") for s in info.get("streams", [])]
    seconds = [float(c) for c in candidates if c not in (None, "N/A")]
    longest = max(seconds, default=0.0)
    return longest if longest > 0 else None
