"""The workspace every job needs: settings, the repository, the media store and the frame indexes.

Opened once per process (a command, the daemon, `provenance serve`) and handed
to the job functions in `monitor.jobs`; the indexes are loaded on first use
and kept current with what other processes store.  Several threads of one
process (the items of a poll) share a workspace: the indexes' loading and
catching up is guarded by a lock (the index structures are not thread-safe),
and the ingest transaction serialises matching and storing anyway.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from fingerprints.align import MatchParams, VideoMatch
from fingerprints.index import FrameIndex, MultiIndexHashIndex
from fingerprints.model import FingerprintSettings, FrameHash
from fingerprints.signals import stored_views
from monitor.config import Config
from monitor.metadata import ExiftoolReader
from storage import MediaStore, SqlRepository, open_database
from storage.db import default_database_url
from storage.records import MediaRecord


@dataclass
class Workspace:
    """What every job needs: settings, the repository, the media store, the frame indexes."""

    config: Config
    repository: SqlRepository
    store: MediaStore
    settings: FingerprintSettings
    settings_id: int
    match_params: MatchParams
    exif: ExiftoolReader = field(default_factory=ExiftoolReader)
    _indexes: dict[str, FrameIndex] | None = None  # stored frame view -> its index
    _marks: dict[str, int] = field(default_factory=dict)  # stored frame view -> last frames row id indexed
    _durations: _Durations | None = None
    index_lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def open(cls, config: Config) -> Workspace:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        database = open_database(config.db_url or default_database_url(config.data_dir))
        if database.dialect == "postgresql":
            from storage.queue_schema import ensure_queue_schema

            ensure_queue_schema(database)  # the job queue's tables, as the migrations do ours
        repository = SqlRepository(database)
        settings = config.fingerprint_settings
        settings_id = repository.get_or_create_settings(settings.key(), settings.algorithm, settings.params())
        return cls(config=config, repository=repository, store=MediaStore(config.data_dir),
                   settings=settings, settings_id=settings_id, match_params=config.match_params)

    def close(self) -> None:
        self.exif.close()
        self.repository.database.dispose()

    def indexes(self) -> dict[str, FrameIndex]:
        """The index of every stored frame view (`fingerprints.signals.stored_views`), caught up with the store.

        Loaded on first use; afterwards each call reads only the frame rows stored
        since (by any process), so matching always sees everything committed.
        Thread-safe: one thread at a time loads or catches up.
        """
        with self.index_lock:
            return self._caught_up_indexes()

    def _caught_up_indexes(self) -> dict[str, FrameIndex]:
        if self._indexes is None:
            self._indexes = {}
            for view in stored_views():
                column = self.repository.frame_column(self.settings_id, view.column)
                # exact, and sub-linear: it falls back to a scan by itself while the store is small
                self._indexes[view.name] = MultiIndexHashIndex.build(column.media_ids, column.timestamps,
                                                                     column.hashes)
                self._marks[view.name] = int(column.row_ids[-1]) if len(column) else 0
            return self._indexes
        for view in stored_views():
            new = self.repository.frame_column(self.settings_id, view.column, after_row_id=self._marks[view.name])
            if not len(new):
                continue
            index = self._indexes[view.name]
            order = np.argsort(new.media_ids, kind="stable")
            media = new.media_ids[order]
            for rows in np.split(order, np.flatnonzero(np.diff(media)) + 1):
                index.add(int(new.media_ids[rows[0]]), new.timestamps[rows], new.hashes[rows])
            self._marks[view.name] = int(new.row_ids[-1])
        return self._indexes

    def stored_frames(self, media_id: int) -> list[FrameHash]:
        """A stored media's frames, with their hashes by view name (as `fingerprints.explain` reads them)."""
        by_column = {v.column: v.name for v in stored_views()}
        return [FrameHash(index=r.index, timestamp=r.timestamp,
                          hashes={by_column[c]: h for c, h in r.hashes.items() if c in by_column},
                          is_scene_cut=r.is_scene_cut, quality=r.quality, template=r.overlay_masked)
                for r in self.repository.frames_for_media(media_id, self.settings_id)]

    def durations(self) -> _Durations:
        with self.index_lock:
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
