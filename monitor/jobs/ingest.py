"""The ingest job: store a verified file once, its fingerprint once, its matches and one post for it.

Data flows one way: file -> checks and metadata -> fingerprint -> index query
-> aligned matches -> provenance records.  A file is fully analysed before
anything is stored, so a corrupt or truncated file leaves no trace; the media
store only ever receives complete, verified files named by their SHA-256.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fingerprints.align import VideoMatch
from fingerprints.decode import VideoDecodeError, stream_info
from fingerprints.model import VideoFingerprint
from fingerprints.video import crops_summary, fingerprint_video
from monitor.analysis import AnalysedFile, _one_line, analyse_file
from monitor.jobs.matching import find_matches, stored_match_views, to_new_match
from monitor.workspace import MatchView, Workspace
from storage import sha256_file
from storage.records import FrameRow, MediaRecord, NewPost, PostRecord

log = logging.getLogger("provenance.ingest")


@dataclass
class IngestResult:
    media: MediaRecord
    post: PostRecord
    new_media: bool
    matches: list[MatchView]


def ingest_analysed(ws: Workspace, analysed: AnalysedFile, post: NewPost) -> IngestResult:
    """Store the file (once), its fingerprint (once), its matches and one post for it."""
    repo = ws.repository
    media = repo.get_media_by_sha256(analysed.sha256)
    new_media = media is None
    if media is None:
        store_path = ws.store.put(analysed.path, analysed.sha256, analysed.extension)
        media = repo.add_media(analysed.new_media(store_path))
    matches: list[VideoMatch] = []
    if not repo.has_fingerprint(media.id, ws.settings_id):
        matches = store_fingerprint(ws, media, analysed.fingerprint)
    stored_post = repo.add_post(replace(post, media_id=media.id))
    views = [MatchView(repo.get_media(m.media_id), m) for m in matches]
    if not new_media and not matches:
        views = stored_match_views(ws, media.id)
    log.info("ingested media=%s sha256=%s new=%s matches=%d post=%s",
             media.id, media.sha256[:12], new_media, len(views), stored_post.id)
    return IngestResult(media=media, post=stored_post, new_media=new_media, matches=views)


def store_fingerprint(ws: Workspace, media: MediaRecord, fp: VideoFingerprint) -> list[VideoMatch]:
    """Match a stored media's new fingerprint against the index, then store both and index it."""
    repo = ws.repository
    matches = find_matches(ws, fp, exclude={media.id})
    repo.add_fingerprint(media.id, ws.settings_id,
                         [FrameRow(f.index, f.timestamp, f.hash, f.is_scene_cut, f.quality, f.centre_hash, f.template,
                                   f.motion_hash) for f in fp.frames],
                         fp.frames_decoded, {"crops": crops_summary(fp.crops),
                                             "frames_skipped_flat": fp.frames_skipped_flat,
                                             "flat_frames": [list(f) for f in fp.flat_frames]})
    for m in matches:
        repo.save_match(to_new_match(media.id, ws.settings_id, m))
    ws.add_to_index(media.id, fp.frames)
    ws.durations()[media.id] = media.duration or 0.0
    return matches


def refingerprint_stored(ws: Workspace, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Fingerprint every stored media that lacks a fingerprint with the current settings.

    Fingerprints made with other settings are kept (never compared, never lost);
    matches are computed afresh under the current settings.
    """
    todo = ws.repository.media_without_fingerprint(ws.settings_id)
    done, failed = 0, []
    for n, media_id in enumerate(todo, 1):
        media = ws.repository.get_media(media_id)
        try:
            path = ws.store.path(media.store_path)
            limits = ws.config.limits.decode
            fp = fingerprint_video(path, ws.settings, info=stream_info(path, media.ffprobe or None, limits),
                                   limits=limits)
            store_fingerprint(ws, media, fp)
            done += 1
        except (VideoDecodeError, OSError, ValueError) as exc:
            failed.append({"media_id": media_id, "sha256": media.sha256, "error": _one_line(str(exc))})
            log.warning("refingerprint failed media=%s error=%s", media_id, _one_line(str(exc)))
        if progress:
            progress(n, len(todo))
    return {"settings": ws.settings.key(), "todo": len(todo), "fingerprinted": done, "failed": failed}


def ingest_file(ws: Workspace, path: Path, post: NewPost,
                progress: Callable[[float, float | None], None] | None = None) -> IngestResult:
    """Analyse then ingest a file on disk; `post.media_id` is filled in here."""
    known = stored_fingerprinted_media(ws, path)
    if known is not None:
        # the very same bytes are stored and fingerprinted: only a new appearance to record
        stored_post = ws.repository.add_post(replace(post, media_id=known.id))
        return IngestResult(media=known, post=stored_post, new_media=False, matches=stored_match_views(ws, known.id))
    return ingest_analysed(ws, analyse_file(path, ws.settings, progress, ws.exif, limits=ws.config.limits), post)


def stored_fingerprinted_media(ws: Workspace, path: Path) -> MediaRecord | None:
    """The stored media with the same bytes as `path`, if it was fingerprinted with today's settings."""
    if not Path(path).is_file():
        return None
    media = ws.repository.get_media_by_sha256(sha256_file(path))
    return media if media and ws.repository.has_fingerprint(media.id, ws.settings_id) else None


def file_url(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()
