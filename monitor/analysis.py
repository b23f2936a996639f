"""Analyse a file before anything is stored: verify it is a video, describe it, fingerprint it.

Kept apart from `monitor.jobs` (which need the database) so that a cold
`find-earliest` can start analysing its video in a child process while the
command is still loading SQLAlchemy (`monitor.cli.prefetch`): this module imports
no database code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fingerprints.decode import VideoDecodeError, stream_info
from fingerprints.model import FingerprintSettings, VideoFingerprint
from fingerprints.video import fingerprint_video
from monitor.failures import Failure, SourceError
from monitor.ffprobe import check_limits, probe as ffprobe
from monitor.limits import Limits
from monitor.metadata import (ExiftoolReader, MetadataError, container_created, safe_link, store_extension,
                              stream_summary)
from storage.mediastore import sha256_file
from storage.records import NewMedia


class InputError(Failure):
    """The input is not something we can take (not a video, truncated, too long, missing); one line and a kind."""

    kind = "unreadable"


@dataclass
class AnalysedFile:
    """A verified video, described and fingerprinted, not stored yet."""

    path: Path
    sha256: str
    size_bytes: int
    probe: dict[str, Any]
    exiftool: dict[str, Any]
    fingerprint: VideoFingerprint
    extension: str | None

    def new_media(self, store_path: str) -> NewMedia:
        info = stream_info(self.path, self.probe)
        raw_created, created = container_created(self.exiftool)
        return NewMedia(
            sha256=self.sha256, size_bytes=self.size_bytes, store_path=store_path,
            duration=round(self.fingerprint.duration, 3), width=info.width, height=info.height,
            fps=round(info.fps, 3) if info.fps else None, **stream_summary(self.probe),
            container_created_raw=raw_created, container_created_at=created,
            exiftool=self.exiftool, ffprobe=self.probe,
        )


def analyse_file(path: Path, settings: FingerprintSettings,
                 progress: Callable[[float, float | None], None] | None = None,
                 exif: ExiftoolReader | None = None, describe: bool = True,
                 limits: Limits | None = None, query: bool = True) -> AnalysedFile:
    """Verify, describe and fingerprint a file; raises `InputError` (with its kind) for anything unusable.

    `progress(seconds_done, seconds_total)` is called as the video is fingerprinted.
    `describe=False` skips exiftool, for a query that will not be stored.
    `query=False` (ingest) computes only what is stored: per-video signals without their query-time views
    (keypoints of mirrored pictures, enlarged halves), which cost about as much again as the rest.
    `limits` (default: the built-in [limits]) are checked on ffprobe's answer
    before decoding, and bound ffprobe and ffmpeg themselves.
    """
    limits = limits or Limits()
    path = Path(path)
    if not path.exists():
        raise InputError("no such file")
    if not path.is_file():
        raise InputError("not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise InputError("empty file (0 bytes): not a video", kind="not-a-video")
    try:
        with safe_link(path) as link:
            probe = ffprobe(link, limits=limits.decode)
            check_limits(probe, limits, "the file")
            info = stream_info(link, probe)
            # a file to look up gets the query-time views too; a file to store, only what is stored
            fingerprint = fingerprint_video(link, settings, info=info, limits=limits.decode, query=query,
                                            progress=(lambda t: progress(t, info.duration)) if progress else None)
            exif_report: dict[str, Any] = {}
            if describe:
                reader = exif or ExiftoolReader()
                try:
                    exif_report = reader.read(link)
                finally:
                    if exif is None:
                        reader.close()
            sha = sha256_file(link)
    except (VideoDecodeError, SourceError) as exc:
        raise InputError(_one_line(str(exc)), kind=exc.kind) from exc
    except MetadataError as exc:
        raise InputError(_one_line(str(exc))) from exc
    except OSError as exc:
        raise InputError(f"cannot read the file: {exc.strerror or exc}") from exc
    return AnalysedFile(path=path, sha256=sha, size_bytes=size, probe=probe, exiftool=exif_report,
                        fingerprint=fingerprint, extension=store_extension(probe))


def _one_line(text: str) -> str:
    return " ".join(text.replace("input: ", "").split())
