"""File metadata as evidence: exiftool's full report and ffprobe's, kept raw.

The container's own creation time (QuickTime CreateDate) is a claim the file
makes about itself; `0000:00:00 00:00:00` means the file does not say.  All
tools run on a link with a safe name, so a hostile file name (newlines, a
leading dash, `../`) never reaches a command line or an exiftool argument file.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import exiftool

# Fields that describe our temporary link, not the evidence.
_LINK_FIELDS = ("SourceFile", "File:FileName", "File:Directory")
_CREATE_DATE_KEYS = ("QuickTime:CreateDate", "QuickTime:MediaCreateDate", "QuickTime:TrackCreateDate",
                     "EXIF:DateTimeOriginal", "EXIF:CreateDate", "Matroska:DateTimeOriginal")
_EXIF_TIME = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")


class MetadataError(Exception):
    pass


@contextlib.contextmanager
def safe_link(path: Path) -> Iterator[Path]:
    """A path to the same file under a harmless name in a private temp dir."""
    with tempfile.TemporaryDirectory(prefix="provenance-") as tmp:
        link = Path(tmp) / "input"
        try:
            os.symlink(path.resolve(), link)
        except OSError:
            shutil.copyfile(path, link)
        yield link


class ExiftoolReader:
    """One long-lived exiftool process (perl starts slowly), shared by a workspace's jobs and threads.

    pyexiftool asks Linux to SIGTERM exiftool when the *thread* that started
    it ends (PR_SET_PDEATHSIG), so the process is started from an owner
    thread of its own that lives until `close`, not from whichever pool
    thread happened to read first.
    """

    def __init__(self) -> None:
        self._tool: exiftool.ExifToolHelper | None = None
        self._lock = threading.Lock()
        self._owner_done = threading.Event()

    def _start_locked(self) -> exiftool.ExifToolHelper:
        started: dict[str, Any] = {}
        ready, done = threading.Event(), threading.Event()

        def own() -> None:
            try:
                tool = exiftool.ExifToolHelper()
                tool.run()
                started["tool"] = tool
            except BaseException as exc:  # handed to the reading thread
                started["error"] = exc
            ready.set()
            done.wait()  # the process's parent thread must outlive it

        threading.Thread(target=own, name="exiftool-owner", daemon=True).start()
        ready.wait()
        if "error" in started:
            done.set()
            raise started["error"]
        self._owner_done = done
        return started["tool"]

    def read(self, path: Path) -> dict[str, Any]:
        """exiftool's report for one file (grouped keys, numeric values)."""
        if shutil.which("exiftool") is None:
            raise MetadataError("exiftool not found: install it (apt-get install libimage-exiftool-perl)")
        with self._lock:
            try:
                if self._tool is None:
                    self._tool = self._start_locked()
                (report,) = self._tool.get_metadata(str(path))
            except (exiftool.exceptions.ExifToolException, ValueError, OSError) as exc:
                self._close_locked()
                raise MetadataError(f"exiftool could not read the file: {' '.join(str(exc).split())[:200]}") from exc
        return {k: v for k, v in report.items() if k not in _LINK_FIELDS}

    def _close_locked(self) -> None:
        if self._tool is not None:
            try:
                self._tool.terminate()
            except Exception:  # noqa: BLE001 - the process may already be gone
                pass
            self._tool = None
        self._owner_done.set()

    def close(self) -> None:
        with self._lock:
            self._close_locked()


def container_created(exif: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """(raw value, parsed UTC time) of the file's own creation date, or (None, None).

    QuickTime stores UTC; a value without a zone is read as UTC.
    """
    for key in _CREATE_DATE_KEYS:
        raw = exif.get(key)
        if not isinstance(raw, str) or raw.startswith("0000"):
            continue
        m = _EXIF_TIME.match(raw.strip())
        if not m:
            return raw, None
        y, mo, d, h, mi, s, zone = m.groups()
        try:
            at = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=UTC)
        except ValueError:
            return raw, None
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            hours, minutes = int(zone[1:3]), int(zone[-2:])
            at = at - sign * (datetime(2000, 1, 1, hours, minutes) - datetime(2000, 1, 1))
        return raw, at
    return None, None


def store_extension(probe: dict[str, Any]) -> str | None:
    """A file extension for the media store, from what the container is (never from a name)."""
    names = set(((probe.get("format") or {}).get("format_name") or "").split(","))
    codecs = {s.get("codec_name") for s in probe.get("streams", [])}
    if "mp4" in names or "mov" in names:
        return "mp4" if "mp4" in names else "mov"
    if "webm" in names or "matroska" in names:
        return "webm" if codecs <= {"vp8", "vp9", "av1", "opus", "vorbis", None} else "mkv"
    for name in ("avi", "flv", "mpegts", "ogg", "gif"):
        if name in names:
            return {"mpegts": "ts"}.get(name, name)
    return None


def stream_summary(probe: dict[str, Any]) -> dict[str, Any]:
    """Codecs, size and rate of the first video and audio streams."""
    video = next((s for s in probe.get("streams", []) if s.get("codec_type") == "video"), {})
    audio = next((s for s in probe.get("streams", []) if s.get("codec_type") == "audio"), {})
    return {
        "video_codec": video.get("codec_name"),
        "audio_codec": audio.get("codec_name"),
        "container_format": (probe.get("format") or {}).get("format_name"),
    }
