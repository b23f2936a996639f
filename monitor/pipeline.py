"""The core job, as plain functions: analyse a file, ingest it, find its earliest appearance.

Data flows one way: file -> checks and metadata -> fingerprint -> index query
-> aligned matches -> provenance records.  A file is fully analysed before
anything is stored, so a corrupt or truncated file leaves no trace; the media
store only ever receives complete, verified files named by their SHA-256.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fingerprints.align import FramePair, MatchParams, Segment, VideoMatch, extend_over_flat, match_fingerprint
from fingerprints.decode import VideoDecodeError, stream_info
from fingerprints.explain import framing, pair_regions
from fingerprints.index import FrameIndex, MultiIndexHashIndex
from fingerprints.model import FingerprintSettings, VideoFingerprint
from fingerprints.video import crops_summary, fingerprint_video
from monitor.analysis import AnalysedFile, InputError, _one_line, analyse_file  # noqa: F401 (re-exported)
from monitor.config import Config
from monitor.metadata import ExiftoolReader
from storage import MediaStore, SqlRepository, open_database, sha256_file
from storage.db import default_database_url
from storage.records import FrameRow, MatchRecord, MatchSegmentRecord, MediaRecord, NewMatch, NewPost, PostRecord

log = logging.getLogger("provenance.pipeline")


@dataclass
class Workspace:
    """What every job needs: settings, the repository, the media store, the index."""

    config: Config
    repository: SqlRepository
    store: MediaStore
    settings: FingerprintSettings
    settings_id: int
    match_params: MatchParams
    exif: ExiftoolReader = field(default_factory=ExiftoolReader)
    _index: FrameIndex | None = None
    _motion_index: FrameIndex | None = None
    _indexed: set[int] = field(default_factory=set)
    _durations: _Durations | None = None

    @classmethod
    def open(cls, config: Config) -> Workspace:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        database = open_database(config.db_url or default_database_url(config.data_dir))
        repository = SqlRepository(database)
        settings = config.fingerprint_settings
        settings_id = repository.get_or_create_settings(settings.key(), settings.algorithm, settings.params())
        return cls(config=config, repository=repository, store=MediaStore(config.data_dir),
                   settings=settings, settings_id=settings_id, match_params=config.match_params)

    def close(self) -> None:
        self.exif.close()
        self.repository.database.dispose()

    def index(self) -> FrameIndex:
        """The frame index of every stored media, kept current with what other processes store."""
        repo = self.repository
        if self._index is None:
            self._indexed = repo.fingerprinted_media_ids(self.settings_id)
            table = repo.frame_table(self.settings_id)
            centre = table.has_centre
            # exact, and sub-linear: it falls back to a scan by itself while the store is small
            self._index = MultiIndexHashIndex.build(
                np.concatenate([table.media_ids, table.media_ids[centre]]),
                np.concatenate([table.timestamps, table.timestamps[centre]]),
                np.concatenate([table.hashes, table.centre_hashes[centre]]))
            moving = table.has_motion
            self._motion_index = MultiIndexHashIndex.build(table.media_ids[moving], table.timestamps[moving],
                                                           table.motion_hashes[moving])
            return self._index
        for media_id in sorted(repo.fingerprinted_media_ids(self.settings_id) - self._indexed):
            self.add_to_index(media_id, repo.frames_for_media(media_id, self.settings_id))
        return self._index

    def motion_index(self) -> FrameIndex:
        """The index of stored moving-part hashes (still-camera shots), kept current like `index`."""
        self.index()
        assert self._motion_index is not None
        return self._motion_index

    def add_to_index(self, media_id: int, frames: list) -> None:
        """Add one media's frames (FrameHash or FrameRow: every hash of each) to the loaded indexes."""
        if self._index is not None and media_id not in self._indexed:
            with_centre = [f for f in frames if f.centre_hash is not None]
            self._index.add(media_id,
                            np.array([f.timestamp for f in frames] + [f.timestamp for f in with_centre],
                                     dtype=np.float64),
                            np.array([f.hash for f in frames] + [f.centre_hash for f in with_centre],
                                     dtype=np.uint64))
            moving = [f for f in frames if f.motion_hash is not None]
            if moving:
                self._motion_index.add(media_id, np.array([f.timestamp for f in moving], dtype=np.float64),
                                       np.array([f.motion_hash for f in moving], dtype=np.uint64))
        self._indexed.add(media_id)

    def durations(self) -> _Durations:
        if self._durations is None:
            self._durations = _Durations(self.repository)
        return self._durations


class _Durations(dict):
    """Stored media durations, loaded from the repository on first use."""

    def __init__(self, repository: SqlRepository) -> None:
        super().__init__()
        self.repository = repository

    def __missing__(self, media_id: int) -> float:
        media = self.repository.get_media(media_id)
        self[media_id] = value = (media.duration or 0.0) if media else 0.0
        return value


@dataclass
class MatchView:
    """A match as reports show it: the other media and how the footage lines up."""

    media: MediaRecord
    match: VideoMatch | None  # None: the very same file (same SHA-256)

    @property
    def exact(self) -> bool:
        return self.match is None


@dataclass
class IngestResult:
    media: MediaRecord
    post: PostRecord
    new_media: bool
    matches: list[MatchView]


def find_matches(ws: Workspace, fingerprint: VideoFingerprint, exclude: set[int]) -> list[VideoMatch]:
    """Matches of a fingerprint against the store, each saying which regions of the frames matched."""
    matches = match_fingerprint(fingerprint, ws.index(), ws.durations(), ws.match_params, exclude=exclude,
                                motion_index=ws.motion_index())
    for k, m in enumerate(matches):
        details = ws.repository.fingerprint_details(m.media_id, ws.settings_id) or {}
        m = matches[k] = extend_over_flat(m, fingerprint.flat_frames, details.get("flat_frames", []),
                                          fingerprint.duration, ws.durations()[m.media_id],
                                          fingerprint.settings.floor_interval, ws.match_params)
        m.regions = pair_regions(fingerprint.frames, ws.repository.frames_for_media(m.media_id, ws.settings_id),
                                 m.pairs, m.mirrored)
        m.framing = framing([(t, b.width / b.frame_width, b.height / b.frame_height) for t, b in fingerprint.crops],
                            [(c["from"], c["width"] / c["frame_width"], c["height"] / c["frame_height"])
                             for c in details.get("crops", []) if c.get("frame_width") and c.get("frame_height")],
                            m.pairs)
    return matches


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
            fp = fingerprint_video(path, ws.settings, info=stream_info(path, media.ffprobe or None))
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
    return ingest_analysed(ws, analyse_file(path, ws.settings, progress, ws.exif), post)


def stored_match_views(ws: Workspace, media_id: int) -> list[MatchView]:
    """The matches computed when `media_id` or its matches were ingested, seen from `media_id`."""
    return [MatchView(ws.repository.get_media(r.stored_media_id), _from_record(r))
            for r in ws.repository.matches_for_media(media_id, ws.settings_id)]


def stored_fingerprinted_media(ws: Workspace, path: Path) -> MediaRecord | None:
    """The stored media with the same bytes as `path`, if it was fingerprinted with today's settings."""
    if not Path(path).is_file():
        return None
    media = ws.repository.get_media_by_sha256(sha256_file(path))
    return media if media and ws.repository.has_fingerprint(media.id, ws.settings_id) else None


def to_new_match(query_media_id: int, settings_id: int, m: VideoMatch) -> NewMatch:
    return NewMatch(
        query_media_id=query_media_id, stored_media_id=m.media_id, settings_id=settings_id,
        query_coverage=m.query_coverage, stored_coverage=m.stored_coverage, mirrored=m.mirrored,
        speed=m.speed, score=m.score,
        segments=[MatchSegmentRecord(s.query_start, s.query_end, s.stored_start, s.stored_end) for s in m.segments],
        # pairs are written from the side of `query_media_id`; `_from_record` turns them round
        evidence={"query_media_id": query_media_id, "matched_frames": m.matched_frames,
                  "mean_distance": m.mean_distance, "specific_frames": m.specific_frames,
                  "motion_frames": m.motion_frames, "flat_frames": m.flat_frames, "regions": m.regions,
                  "framing": m.framing,
                  "pairs": [[p.query_time, p.stored_time, p.distance] for p in m.pairs]},
    )


# `fingerprints.explain` regions as seen from the other video of a match
_TURNED_ROUND = {"cropped": "crop of query", "crop of query": "cropped", "window": "in a window of the stored video",
                 "surround": "under an overlay in the stored video"}


def _from_record(r: MatchRecord) -> VideoMatch:
    """A stored match as a `VideoMatch` seen from `r.query_media_id`."""
    ev = r.evidence or {}
    pairs = [FramePair(*p) for p in ev.get("pairs", [])]
    regions = dict(ev.get("regions", {}))
    framed = dict(ev.get("framing", {}))
    if ev.get("query_media_id") not in (None, r.query_media_id):
        pairs = [FramePair(p.stored_time, p.query_time, p.distance) for p in pairs]
        regions = {_TURNED_ROUND.get(k, k): n for k, n in regions.items()}
        framed = {("stored" + k[5:] if k.startswith("query") else "query" + k[6:]): v for k, v in framed.items()}
    segments = [Segment(s.query_start, s.query_end, s.stored_start, s.stored_end) for s in r.segments]
    first = segments[0] if segments else Segment(0.0, 0.0, 0.0, 0.0)
    return VideoMatch(
        media_id=r.stored_media_id, query_coverage=r.query_coverage, stored_coverage=r.stored_coverage,
        segments=segments, mirrored=r.mirrored, speed=round(r.speed, 4),
        offset=round(first.stored_start - r.speed * first.query_start, 3), score=r.score,
        matched_frames=ev.get("matched_frames", len(pairs)), mean_distance=ev.get("mean_distance", 0.0),
        pairs=pairs, specific_frames=ev.get("specific_frames", 0), motion_frames=ev.get("motion_frames", 0),
        flat_frames=ev.get("flat_frames", 0), framing=framed,
        regions=regions,
    )


def file_url(path: Path) -> str:
    return Path(os.path.abspath(path)).as_uri()
