"""The workspace every job needs: settings, the repository, the media store and the frame indexes.

Opened once per process (a command, the daemon, `provenance serve`) and handed
to the job functions in `monitor.jobs`; the indexes are loaded on first use
and kept current with what other processes store.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fingerprints.align import MatchParams, VideoMatch
from fingerprints.index import FrameIndex, MultiIndexHashIndex
from fingerprints.model import FingerprintSettings
from monitor.config import Config
from monitor.metadata import ExiftoolReader
from storage import MediaStore, SqlRepository, open_database
from storage.db import default_database_url
from storage.records import MediaRecord


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
