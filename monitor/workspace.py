"""The workspace every job needs: settings, the repository, the media store and the frame indexes.

Opened once per process (a command, the daemon, `provenance serve`) and handed
to the job functions in `monitor.jobs`; the indexes are loaded on first use
and kept current with what other processes store.  Several threads of one
process (the items of a poll) share a workspace: the indexes' loading and
catching up is guarded by a lock (the index structures are not thread-safe),
and the ingest transaction serialises matching and storing anyway.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path


from fingerprints.align import MatchParams, VideoMatch
from fingerprints.index import FrameIndex
from fingerprints.segments import IndexCorrupt, SegmentedHashIndex
from fingerprints.model import FingerprintSettings, FrameHash
from fingerprints.signals import FrameView, stored_views
from monitor.config import Config
from monitor.metadata import ExiftoolReader
from storage import MediaStore, SqlRepository, open_database
from storage.db import default_database_url
from storage.records import MediaRecord

log = logging.getLogger("provenance.workspace")

INDEX_SUBDIR = "index"  # in the data dir: derived files, rebuilt from the database whenever needed


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
    _indexes: dict[str, SegmentedHashIndex] | None = None  # stored frame view -> its index
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
        for index in (self._indexes or {}).values():
            index.close()
        self.exif.close()
        self.repository.database.dispose()

    def index_dir(self, view: str) -> Path:
        """Where a stored view's segment files live: per database, view and fingerprint setting."""
        return self.config.data_dir / INDEX_SUBDIR / self.repository.database.key() / view / self.settings.key()

    def indexes(self) -> dict[str, FrameIndex]:
        """The index of every stored frame view (`fingerprints.signals.stored_views`), caught up with the store.

        Each view's index lives on disk in segment files (`fingerprints.segments`):
        opening one maps its files, and every call reads only the frame rows
        stored since the index's high-water mark (by any process), so matching
        always sees everything committed.  The database is the source of truth:
        an index that does not match it (missing, damaged, or from another
        database) is rebuilt from it.  Thread-safe: one thread at a time opens
        or catches up (`index_lock`).
        """
        with self.index_lock:
            if self._indexes is None:
                self._indexes = {view.name: self._open_index(view) for view in stored_views()}
            for view in stored_views():
                index = self._indexes[view.name]
                index.refresh()
                new = self.repository.frame_column(self.settings_id, view.column,
                                                   after_row_id=max(index.high_water_mark, 0))
                if len(new):
                    index.append(new.row_ids, new.media_ids, new.timestamps, new.hashes)
            return self._indexes

    def _open_index(self, view: FrameView) -> SegmentedHashIndex:
        directory = self.index_dir(view.name)
        try:
            index = SegmentedHashIndex.open(directory)
            mark = index.high_water_mark
            if mark <= 0 or self.repository.frame_row_exists(self.settings_id, mark):
                return index
            problem = f"its last row (id {mark}) is not in the database"
        except IndexCorrupt as error:
            problem = str(error)
        log.warning("rebuilding the %s index from the database: %s", view.name, problem)
        return self.rebuild_index(view)

    def rebuild_index(self, view: FrameView) -> SegmentedHashIndex:
        """A stored view's index made afresh from the database, streaming its rows (bounded memory)."""
        chunks = ((c.row_ids, c.media_ids, c.timestamps, c.hashes)
                  for c in self.repository.iter_frame_column(self.settings_id, view.column))
        return SegmentedHashIndex.build(self.index_dir(view.name), chunks)

    def forget_media(self, media_id: int) -> None:
        """Hide a media from every frame index of this database, the current setting's and older ones'.

        Called while the deletion's transaction holds the setting's lock and
        after `indexes()` caught up, so no process can append the media's rows again.
        """
        for index in self.indexes().values():
            index.remove(media_id)
        current = {self.index_dir(view.name) for view in stored_views()}
        root = self.config.data_dir / INDEX_SUBDIR / self.repository.database.key()
        for directory in sorted(p.parent for p in root.glob("*/*/manifest.json")):
            if directory not in current:
                try:
                    other = SegmentedHashIndex.open(directory)
                except IndexCorrupt:
                    continue  # rebuilt from the database (without the media) when next opened
                try:
                    other.remove(media_id)
                finally:
                    other.close()
        if self._durations is not None:
            self._durations.pop(media_id, None)

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
