"""The ingest job: store a verified file once, its fingerprint once, its matches and one post for it.

Data flows one way: file -> checks and metadata -> fingerprint -> index query
-> aligned matches -> provenance records.  A file is fully analysed before
anything is stored, so a corrupt or truncated file leaves no trace; the media
store only ever receives complete, verified files named by their SHA-256.

A publication claim outside the plausible range (`storage.records.implausible_time`:
before 1990, or more than a day ahead, e.g. a platform's 9999-12-31
placeholder) is never stored as a claim: the post keeps it, with the reason,
under `raw_metadata["implausible_claim"]`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fingerprints.align import VideoMatch
from fingerprints.decode import VideoDecodeError, stream_info
from fingerprints.model import VideoFingerprint
from fingerprints.signals import MediaSignal, media_signals, stored_views
from fingerprints.video import crops_summary, fingerprint_video
from monitor.analysis import AnalysedFile, _one_line, analyse_file
from monitor.jobs.alerts import after_ingest
from monitor.jobs.corrections import DeletedBytes, deletion_refusing
from monitor.jobs.matching import find_matches, stored_match_views, to_new_match
from monitor.workspace import MatchView, Workspace
from storage import AlreadyExists, SqlRepository, sha256_file
from storage.failpoints import failpoint
from storage.records import FrameRow, MediaRecord, NewPost, PostRecord, SignalValue, implausible_time

log = logging.getLogger("provenance.ingest")


@dataclass
class IngestResult:
    media: MediaRecord
    post: PostRecord
    new_media: bool
    matches: list[MatchView]
    new_post: bool = True  # False: the same post (archive key, or bytes and URL) was stored already
    alerts: list = field(default_factory=list)  # AlertRecords this post raised (tracked footage matched)


def ingest_analysed(ws: Workspace, analysed: AnalysedFile, post: NewPost, allow_deleted: bool = False) -> IngestResult:
    """Store the file (once), its fingerprint (once), its matches and one post for it.

    The file goes into the media store first (named by its SHA-256, so a
    repeat is a no-op); then every row is written in one transaction, under
    the fingerprint setting's lock, so an ingest killed at any point leaves
    all of it or none of it (a stored file no row names is an orphan the
    sweep removes), and two processes ingesting related videos at once each
    match against what the other committed.  Bytes that were deleted on
    purpose are refused (`DeletedBytes`) unless `allow_deleted`.
    """
    post = without_implausible_claim(post)
    _refuse_deleted(ws, analysed.sha256, post.url, allow_deleted)
    known = ws.repository.get_media_by_sha256(analysed.sha256)
    store_path = known.store_path if known else ws.store.put(analysed.path, analysed.sha256, analysed.extension)
    failpoint("after-store-put")
    with ws.repository.transaction(ws.settings_id) as repo:
        media = repo.get_media_by_sha256(analysed.sha256)
        new_media = media is None
        if media is None:
            media = repo.add_media(analysed.new_media(store_path))
        matches: list[VideoMatch] = []
        if not repo.has_fingerprint(media.id, ws.settings_id):
            matches = _store_fingerprint(ws, repo, media, analysed.fingerprint)
        stored_post, new_post = _add_post_once(repo, replace(post, media_id=media.id))
        failpoint("before-commit")
    ws.durations()[media.id] = media.duration or 0.0
    views = [MatchView(ws.repository.get_media(m.media_id), m) for m in matches]
    if not new_media and not matches:
        views = stored_match_views(ws, media.id)
    log.info("ingested media=%s sha256=%s new=%s matches=%d post=%s new_post=%s",
             media.id, media.sha256[:12], new_media, len(views), stored_post.id, new_post)
    return _finished(ws, IngestResult(media=media, post=stored_post, new_media=new_media, matches=views,
                                      new_post=new_post))


def _finished(ws: Workspace, result: IngestResult) -> IngestResult:
    """After the ingest's commit: the alerts its post raises (recorded, and sent in the background)."""
    result.alerts = after_ingest(ws, result)
    return result


def _refuse_deleted(ws: Workspace, sha256: str, url: str, allow_deleted: bool) -> None:
    if not allow_deleted and (deletion := deletion_refusing(ws, sha256, url)) is not None:
        raise DeletedBytes(deletion)


def without_implausible_claim(post: NewPost) -> NewPost:
    """`post` without a publication claim that cannot be true; the claim is kept in its raw metadata."""
    if post.published_at is None or (reason := implausible_time(post.published_at)) is None:
        return post
    log.warning("implausible publication claim ignored url=%s published_at=%s source=%s",
                post.url, post.published_at.isoformat(), post.published_source)
    flagged = {"published_at": post.published_at.isoformat(), "precision": post.published_precision,
               "source": post.published_source, "reason": reason}
    return replace(post, published_at=None, published_precision=None, published_source=None,
                   raw_metadata={**post.raw_metadata, "implausible_claim": flagged})


def _add_post_once(repo: SqlRepository, post: NewPost) -> tuple[PostRecord, bool]:
    """The post, stored unless the same one is (same archive key, or same media at the same URL)."""
    existing = repo.find_post(post.media_id, post.url, post.archive_key)
    if existing is not None:
        return existing, False
    return repo.add_post(post), True


def _store_fingerprint(ws: Workspace, repo: SqlRepository, media: MediaRecord,
                       fp: VideoFingerprint) -> list[VideoMatch]:
    """Match a media's new fingerprint against the store, then store both (in `repo`'s transaction)."""
    matches = find_matches(ws, fp, exclude={media.id})
    repo.add_fingerprint(media.id, ws.settings_id, frame_rows(fp), fp.frames_decoded,
                         {"crops": crops_summary(fp.crops), "frames_skipped_flat": fp.frames_skipped_flat,
                          "flat_frames": [list(f) for f in fp.flat_frames]}, signal_values(fp))
    for m in matches:
        repo.save_match(to_new_match(media.id, ws.settings_id, m))
    return matches


def frame_rows(fp: VideoFingerprint) -> list[FrameRow]:
    """The stored views of each frame, by the `frames` column each is kept in."""
    views = [(v, v.column) for v in stored_views()]
    return [FrameRow(f.index, f.timestamp,
                     {column: f.hashes[v.name] for v, column in views if v.name in f.hashes and v.storable(f)},
                     f.is_scene_cut, f.quality, f.template) for f in fp.frames]


def signal_values(fp: VideoFingerprint) -> list[SignalValue]:
    """The per-video signal values the fingerprinting pass computed, as stored (kind, version, bytes)."""
    return [SignalValue(kind.name, kind.version, kind.to_bytes(fp.signals[kind.name]))
            for kind in media_signals() if fp.signals.get(kind.name) is not None]


def _fingerprint_stored(ws: Workspace, stored: MediaRecord, **options: Any) -> VideoFingerprint:
    """A stored media's file fingerprinted again, its decode bounded by [limits] like any other."""
    path = ws.store.path(stored.store_path)
    limits = ws.config.limits.decode
    return fingerprint_video(path, ws.settings, info=stream_info(path, stored.ffprobe or None, limits), limits=limits,
                             **options)


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
            fp = _fingerprint_stored(ws, media)
            with ws.repository.transaction(ws.settings_id) as repo:
                if not repo.has_fingerprint(media.id, ws.settings_id):  # another process may have done it
                    _store_fingerprint(ws, repo, media, fp)
            done += 1
        except (VideoDecodeError, OSError, ValueError) as exc:
            failed.append({"media_id": media_id, "sha256": media.sha256, "error": _one_line(str(exc))})
            log.warning("refingerprint failed media=%s error=%s", media_id, _one_line(str(exc)))
        if progress:
            progress(n, len(todo))
    return {"settings": ws.settings.key(), "todo": len(todo), "fingerprinted": done, "failed": failed}


def backfill_signals(ws: Workspace, progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Compute the per-video signal values that fingerprinted media lack, from their stored files.

    Media fingerprinted before a kind existed (or with an older version of it)
    have frames but no value of it: the signal's route cannot find them until
    this runs.  Frames and stored matches are left as they are; matching runs
    at query time, so `find-earliest` sees the new values at once.
    """
    missing: dict[int, list[MediaSignal]] = {}
    for kind in media_signals():
        for media_id in ws.repository.media_without_signal(ws.settings_id, kind.name, kind.version):
            missing.setdefault(media_id, []).append(kind)
    done, failed = 0, []
    for n, (media_id, kinds) in enumerate(sorted(missing.items()), 1):
        media = ws.repository.get_media(media_id)
        try:
            values = signal_values(_fingerprint_stored(ws, media, media=kinds))
            try:
                ws.repository.add_media_signals(media.id, ws.settings_id, values)
                done += 1
            except AlreadyExists:
                pass  # another process stored them meanwhile
        except (VideoDecodeError, OSError, ValueError) as exc:
            failed.append({"media_id": media_id, "sha256": media.sha256, "error": _one_line(str(exc))})
            log.warning("signal backfill failed media=%s error=%s", media_id, _one_line(str(exc)))
        if progress:
            progress(n, len(missing))
    return {"kinds": {k.name: k.version for k in media_signals()}, "todo": len(missing), "computed": done,
            "failed": failed}


def ingest_file(ws: Workspace, path: Path, post: NewPost,
                progress: Callable[[float, float | None], None] | None = None,
                allow_deleted: bool = False) -> IngestResult:
    """Analyse then ingest a file on disk; `post.media_id` is filled in here."""
    post = without_implausible_claim(post)
    known = stored_fingerprinted_media(ws, path)
    if known is not None:
        # the very same bytes are stored and fingerprinted: at most a new appearance to record
        _refuse_deleted(ws, known.sha256, post.url, allow_deleted)
        with ws.repository.transaction() as repo:
            stored_post, new_post = _add_post_once(repo, replace(post, media_id=known.id))
        return _finished(ws, IngestResult(media=known, post=stored_post, new_media=False,
                                          matches=stored_match_views(ws, known.id), new_post=new_post))
    return ingest_analysed(ws, analyse_file(path, ws.settings, progress, ws.exif, limits=ws.config.limits,
                                            query=False), post,
                           allow_deleted)


def stored_fingerprinted_media(ws: Workspace, path: Path) -> MediaRecord | None:
    """The stored media with the same bytes as `path`, if it was fingerprinted with today's settings."""
    if not Path(path).is_file():
        return None
    media = ws.repository.get_media_by_sha256(sha256_file(path))
    return media if media and ws.repository.has_fingerprint(media.id, ws.settings_id) else None


def file_url(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()
