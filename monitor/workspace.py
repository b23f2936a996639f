"""The workspace every job needs: settings, the repository, the media store and the indexes.

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
from fingerprints.signal_log import LogCorrupt, SignalLog, remove_from_logs
from fingerprints.signals import FrameView, MediaSignal, MediaSignalIndex, media_signals, stored_views
from monitor.config import Config
from monitor.metadata import ExiftoolReader
from storage import MediaStore, SqlRepository, open_database
from storage.db import default_database_url
from storage.records import MediaRecord

log = logging.getLogger("provenance.workspace")

INDEX_SUBDIR = "index"  # in the data dir: derived files, rebuilt from the database whenever needed
SIGNALS_SUBDIR = "signals"  # in a database's index dir: one log per per-video signal kind, version and setting


class SignalIndex:
    """A per-video signal kind's index (in memory), loaded from its log on disk and kept caught up with the database."""

    def __init__(self, kind: MediaSignal, log: SignalLog) -> None:
        self.kind = kind
        self.log = log
        self.index: MediaSignalIndex = kind.make_index()
        self.media: set[int] = set()  # the media whose values the index holds

    def _reset(self) -> None:
        self.index = self.kind.make_index()
        self.media = set()

    def _apply(self, entry) -> None:
        _, media_id, value = entry
        if value is None:
            self.index.remove(media_id)
            self.media.discard(media_id)
        else:
            try:
                decoded = self.kind.from_bytes(value)
            except ValueError as error:  # a damaged value: the others stay matchable
                log.warning("%s value of media %s left out of its index: %s", self.kind.name, media_id, error)
                return
            self.index.add(media_id, decoded)
            self.media.add(media_id)

    def catch_up(self, fetch) -> int:
        """Read what other processes appended to the log, then append the database's rows above the mark."""
        return self.log.sync(self._reset, self._apply, fetch)

    def rebuild(self, rows) -> None:
        self.log.rebuild(rows, self._reset, self._apply)

    def remove(self, media_id: int) -> None:
        self.log.remove(media_id, self._apply)

    @property
    def high_water_mark(self) -> int:
        return self.log.high_water_mark

    def __len__(self) -> int:
        """How many videos' values it holds."""
        return len(self.media)


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
    _signal_indexes: dict[str, SignalIndex] | None = None  # per-video signal kind -> its index
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
            # row ids grow in commit order (ingests store under the setting's lock): every row up to the
            # last one now is committed, so each index is caught up to it, whether or not those rows have
            # its column, and a query with nothing new reads no frame rows
            last = self.repository.last_frame_row_id(self.settings_id)
            for view in stored_views():
                index = self._indexes[view.name]
                index.refresh()
                mark = max(index.high_water_mark, 0)
                if last <= mark:
                    continue
                new = self.repository.frame_column(self.settings_id, view.column, after_row_id=mark)
                index.append(new.row_ids, new.media_ids, new.timestamps, new.hashes, covered=last)
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

    def signal_dir(self, kind: MediaSignal) -> Path:
        """Where a per-video signal kind's log lives: per database, kind and version, and fingerprint setting."""
        return (self.config.data_dir / INDEX_SUBDIR / self.repository.database.key() / SIGNALS_SUBDIR
                / f"{kind.name}-v{kind.version}" / self.settings.key())

    def signal_indexes(self) -> dict[str, SignalIndex]:
        """The index of every per-video signal kind (`fingerprints.signals.media_signals`), caught up.

        As `indexes()`: each kind's values are read from a log on disk
        (`fingerprints.signal_log`), then only the rows stored since its
        high-water mark from the database; a log that does not match the
        database (missing, damaged, naming a row it lacks) is rebuilt from it.
        """
        with self.index_lock:
            if self._signal_indexes is None:
                self._signal_indexes = {}
            for kind in media_signals():
                if kind.name not in self._signal_indexes:
                    self._signal_indexes[kind.name] = self._open_signal_index(kind)
                try:
                    self._signal_indexes[kind.name].catch_up(self._signal_rows(kind))
                except LogCorrupt as error:
                    log.warning("rebuilding the %s index from the database: %s", kind.name, error)
                    self.rebuild_signal_index(kind)
            return self._signal_indexes

    def _signal_rows(self, kind: MediaSignal):
        def fetch(after: int):
            return ((r.row_id, r.media_id, r.value) for r in
                    self.repository.iter_media_signals(self.settings_id, kind.name, kind.version, after))
        return fetch

    def _open_signal_index(self, kind: MediaSignal) -> SignalIndex:
        index = SignalIndex(kind, SignalLog(self.signal_dir(kind), kind.name, kind.version))
        try:
            index.catch_up(None)  # the log as it is on disk
            mark = index.high_water_mark
            if mark <= 0 or self.repository.media_signal_row_exists(self.settings_id, kind.name, kind.version, mark):
                return index
            problem = f"its last row (id {mark}) is not in the database"
        except LogCorrupt as error:
            problem = str(error)
        log.warning("rebuilding the %s index from the database: %s", kind.name, problem)
        index.rebuild(self._signal_rows(kind)(0))
        return index

    def rebuild_signal_index(self, kind: MediaSignal) -> SignalIndex:
        """A per-video signal kind's log and index made afresh from the database (values streamed in batches)."""
        index = SignalIndex(kind, SignalLog(self.signal_dir(kind), kind.name, kind.version))
        index.rebuild(self._signal_rows(kind)(0))
        if self._signal_indexes is not None:
            self._signal_indexes[kind.name] = index
        return index

    def forget_media(self, media_id: int) -> None:
        """Hide a media from every index of this database, the current setting's and older ones'.

        Called while the deletion's transaction holds the setting's lock and
        after `indexes()` and `signal_indexes()` caught up, so no process can append the media's rows again.
        """
        for index in self.indexes().values():
            index.remove(media_id)
        for signal_index in self.signal_indexes().values():
            signal_index.remove(media_id)
        current = {self.signal_dir(kind) for kind in media_signals()}
        signals_root = self.config.data_dir / INDEX_SUBDIR / self.repository.database.key() / SIGNALS_SUBDIR
        remove_from_logs(sorted(p.parent for p in signals_root.glob("*/*/values.log") if p.parent not in current),
                         media_id)
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
