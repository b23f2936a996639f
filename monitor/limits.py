"""The bounds every download and every decode works within ([limits] in config.toml).

Feeds, pages and media come from strangers: a server can drip one byte a
second, send a gzip bomb, or serve a 1.6 MB file that claims 16000x16000
pixels or three hours of video.  Each of these is refused by a limit here, as
a recorded failure of that item (`monitor.failures`), so one hostile item
never holds up or exhausts a poll.  Where each limit is enforced:

* `item_deadline_seconds`, `max_download_bytes`, `download_memory_mb`:
  `monitor.sources.isolated` runs yt-dlp in a child process that is killed
  at the deadline, when its files outgrow the cap, and cannot map more memory;
* `max_page_bytes`, `max_redirects`: `monitor.sources.fetch`, our own reader
  of feeds and pages, which unpacks gzip/deflate in steps and stops at the cap;
* `max_duration_seconds`, `max_pixels`, `max_frames`: `monitor.ffprobe.check_limits`,
  before anything is decoded (still images are refused there too);
* `decode_cpu_seconds`, `decode_memory_mb`: resource limits of every ffmpeg
  and ffprobe process (`fingerprints.decode.DecodeLimits`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fingerprints.decode import DecodeLimits

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(value: Any) -> int:
    """Bytes from an int or a size like "10M", "2G", "512KiB" (binary units); ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    m = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"{value!r} is not a size; write bytes or e.g. \"10M\", \"2G\"")
    return int(float(m[1]) * _UNITS[m[2].lower()])


def format_size(size: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class Limits:
    """Validated [limits]; the defaults are those config.toml documents."""

    item_deadline_seconds: float = 900.0
    max_download_bytes: int = 2 * 2**30
    download_memory_mb: int = 512
    max_page_bytes: int = 10 * 2**20
    max_redirects: int = 10
    max_duration_seconds: float = 3 * 3600.0
    max_pixels: int = 7680 * 4320
    max_frames: int = 1_000_000
    decode_cpu_seconds: float = 3600.0
    decode_memory_mb: int = 2048

    @property
    def decode(self) -> DecodeLimits:
        from fingerprints.decode import DecodeLimits  # numpy: not for the light yt-dlp process

        return DecodeLimits(cpu_seconds=self.decode_cpu_seconds, memory_mb=self.decode_memory_mb,
                            max_seconds=self.max_duration_seconds, max_pixels=self.max_pixels)


# key -> (converter, lowest allowed value, what to write)
_RULES: dict[str, tuple[Any, float, str]] = {
    "item_deadline_seconds": (float, 1, "seconds, at least 1"),
    "max_download_bytes": (parse_size, 1024, "a size of at least 1K, e.g. \"2G\""),
    "download_memory_mb": (int, 128, "a whole number of MiB, at least 128"),
    "max_page_bytes": (parse_size, 1024, "a size of at least 1K, e.g. \"10M\""),
    "max_redirects": (int, 0, "a whole number, 0 or more"),
    "max_duration_seconds": (float, 1, "seconds, at least 1"),
    "max_pixels": (int, 64, "a whole number of pixels (width x height), at least 64"),
    "max_frames": (int, 1, "a whole number, at least 1"),
    "decode_cpu_seconds": (float, 1, "CPU seconds, at least 1"),
    "decode_memory_mb": (int, 512, "a whole number of MiB, at least 512 (ffmpeg itself maps ~300 MiB)"),
}
assert set(_RULES) == {f.name for f in fields(Limits)}


def parse_limits(values: dict[str, Any]) -> Limits:
    """`Limits` from a [limits] table; raises ValueError with one line naming the bad key."""
    unknown = sorted(set(values) - set(_RULES))
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(_RULES)}")
    parsed = {}
    for key, value in values.items():
        convert, lowest, wanted = _RULES[key]
        number_ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and (convert is float or isinstance(value, int))
        try:
            number = parse_size(value) if convert is parse_size else convert(value) if number_ok else None
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number < lowest:
            raise ValueError(f"{key} must be {wanted}; got {value!r}")
        parsed[key] = number
    return Limits(**parsed)
