"""The one place that reads and writes rows; it hands out `storage.records` dataclasses.

Every method runs in its own short transaction, so callers never hold a
session and ORM objects never escape.  Rules that protect evidence live here:
a media row is never overwritten, a post keeps the platform's claim apart
from our observation, and matches (derived data) are replaced on
recomputation.  Statements that race between processes (the daemon lock,
watch item state) are single atomic statements on both SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.db import Database, StorageError
from storage.errors import NotFound
from storage.models import (
    HASH_COLUMNS,
    DaemonLockModel,
    FingerprintSettingsModel,
    FrameModel,
    MatchModel,
    MediaFingerprintModel,
    MediaModel,
    MediaSignalModel,
    ObservationModel,
    PollModel,
    PostModel,
    WatchItemModel,
    WatchModel,
    UTCDateTime,
    utcnow,
)
from storage.workspace_repository import WorkspaceRepository
from storage.records import (
    OBSERVATION_STATUSES,
    PRECISIONS,
    WATCH_KINDS,
    FrameRow,
    FrameColumn,
    MatchRecord,
    MatchSegmentRecord,
    MediaRecord,
    NewMatch,
    NewMedia,
    NewObservation,
    NewPost,
    ObservationRecord,
    PollRecord,
    PostRecord,
    RevisitState,
    SignalRow,
    SignalValue,
    WatchItemRecord,
    WatchRecord,
)

if TYPE_CHECKING:
    import numpy as np

UINT64_LIMIT = 1 << 64
INT64_LIMIT = 1 << 63
POLL_RUNNING = "running"
POLL_INTERRUPTED = "interrupted"
POLL_END_STATES = ("ok", "partial", "failed", POLL_INTERRUPTED)
ITEM_STORED = "stored"
ITEM_FAILED = "failed"
# What became of one item of a poll: stored by it, stored already (by another watch, process or an
# earlier attempt), or failed.
ITEM_OUTCOMES = ("stored", "already stored", "failed")


class AlreadyExists(StorageError):
    """A row with this unique key exists already; `existing` is its record, where the caller may want it."""

    def __init__(self, message: str, existing: Any = None) -> None:
        super().__init__(message)
        self.existing = existing


def to_signed64(value: int) -> int:
    """An unsigned 64-bit hash as the signed BIGINT that stores it."""
    if not 0 <= value < UINT64_LIMIT:
        raise ValueError(f"hash {value!r} is not an unsigned 64-bit integer")
    return value - UINT64_LIMIT if value >= INT64_LIMIT else value


def to_unsigned64(value: int) -> int:
    """The stored signed BIGINT back as the unsigned 64-bit hash."""
    return value + UINT64_LIMIT if value < 0 else value


def _columns_of(batch: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(row ids, media ids, timestamps, unsigned hashes) of a batch of `frame_column` rows."""
    import numpy as np  # here, not at import time: commands that never read frames skip numpy

    ids, media, times, hashes = zip(*batch)
    # the stored signed values reinterpreted bit for bit: two's complement
    return (np.array(ids, dtype=np.int64), np.array(media, dtype=np.int64), np.array(times, dtype=np.float64),
            np.array(hashes, dtype=np.int64).view(np.uint64))


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _store(session, row) -> None:
    """Write `row` and read it back, so records show what was stored (UTC, JSON as parsed)."""
    session.flush()
    session.refresh(row)


def _columns(model, record_cls) -> dict[str, Any]:
    return {f.name: getattr(model, f.name) for f in fields(record_cls)}


def _media_record(row: MediaModel) -> MediaRecord:
    return MediaRecord(**_columns(row, MediaRecord))


def _post_record(row: PostModel) -> PostRecord:
    return PostRecord(**_columns(row, PostRecord))


def _observation_record(row: ObservationModel) -> ObservationRecord:
    return ObservationRecord(**_columns(row, ObservationRecord))


def _watch_record(row: WatchModel) -> WatchRecord:
    return WatchRecord(**_columns(row, WatchRecord))


def _poll_record(row: PollModel) -> PollRecord:
    return PollRecord(**_columns(row, PollRecord))


def _watch_item_record(row: WatchItemModel) -> WatchItemRecord:
    return WatchItemRecord(**_columns(row, WatchItemRecord))


def _match_record(row: MatchModel) -> MatchRecord:
    values = _columns(row, MatchRecord)
    values["segments"] = [MatchSegmentRecord(**segment) for segment in row.segments]
    return MatchRecord(**values)


def _seen_from_other_side(match: MatchRecord) -> MatchRecord:
    """The same match with query and stored swapped.

    `speed` is stored seconds per query second, so it inverts.
    """
    return MatchRecord(
        id=match.id,
        created_at=match.created_at,
        query_media_id=match.stored_media_id,
        stored_media_id=match.query_media_id,
        settings_id=match.settings_id,
        query_coverage=match.stored_coverage,
        stored_coverage=match.query_coverage,
        mirrored=match.mirrored,
        speed=1.0 / match.speed if match.speed else match.speed,
        score=match.score,
        segments=[
            MatchSegmentRecord(
                query_start=s.stored_start,
                query_end=s.stored_end,
                stored_start=s.query_start,
                stored_end=s.query_end,
            )
            for s in match.segments
        ],
        evidence=match.evidence,
    )


def validate_published_claim(post: NewPost) -> None:
    """The platform's claim is all three of time, precision and source, or none of them."""
    claim = {
        "published_at": post.published_at,
        "published_precision": post.published_precision,
        "published_source": post.published_source,
    }
    present = [name for name, value in claim.items() if value is not None]
    if present and len(present) != len(claim):
        missing = [name for name in claim if name not in present]
        raise ValueError(
            f"post {post.url}: {', '.join(present)} given without {', '.join(missing)}; "
            "a publication time needs its precision and its source, or none of the three"
        )
    if post.published_precision is not None and post.published_precision not in PRECISIONS:
        raise ValueError(
            f"post {post.url}: published_precision {post.published_precision!r} is not one of "
            f"{', '.join(PRECISIONS)}"
        )
    _require_aware("published_at", post.published_at)
    _require_aware("first_seen_at", post.first_seen_at)


class SqlRepository(WorkspaceRepository):
    """Reads and writes all stored records through one `Database`.

    Each method runs in a transaction of its own, except on a repository bound
    to one transaction by `transaction()`, whose methods all share it.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._bound: Session | None = None

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if self._bound is not None:
            yield self._bound
        else:
            with self.database.session() as session:
                yield session

    @contextmanager
    def transaction(self, settings_id: int | None = None) -> Iterator[SqlRepository]:
        """A repository whose calls all run in one transaction: committed at the end, rolled back on error.

        With `settings_id`, the transaction first takes that fingerprint
        setting's lock (it writes the setting's row, which SQLite and
        PostgreSQL both let only one transaction do at a time): ingests that
        match and store under one setting run one after another, so each sees
        every fingerprint committed before it, and row ids grow in commit order.
        """
        if self._bound is not None:
            raise StorageError("a transaction is already open on this repository")
        with self.database.session() as session:
            if settings_id is not None:
                locked = session.execute(sa.update(FingerprintSettingsModel)
                                         .where(FingerprintSettingsModel.id == settings_id)
                                         .values(key=FingerprintSettingsModel.key))
                if locked.rowcount != 1:
                    raise NotFound(f"no fingerprint settings with id {settings_id}")
            bound = copy.copy(self)
            bound._bound = session
            yield bound

    def _upsert(self, model):
        """INSERT ... ON CONFLICT for the database's dialect."""
        if self.database.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    # --- fingerprint settings --------------------------------------------

    def get_or_create_settings(self, key: str, algorithm: str, params: dict) -> int:
        """The id of the settings stored under `key`, storing them on first use."""
        for _ in range(2):
            with self._session() as session:
                existing = session.scalar(
                    sa.select(FingerprintSettingsModel.id).where(FingerprintSettingsModel.key == key)
                )
                if existing is not None:
                    return existing
            try:
                with self._session() as session:
                    row = FingerprintSettingsModel(key=key, algorithm=algorithm, params=params)
                    session.add(row)
                    session.flush()
                    return row.id
            except IntegrityError:
                continue  # another process stored the same key first
        raise StorageError(f"could not store fingerprint settings {key!r}")

    # --- media -------------------------------------------------------------

    def get_media(self, media_id: int) -> MediaRecord | None:
        with self._session() as session:
            row = session.get(MediaModel, media_id)
            return _media_record(row) if row else None

    def get_media_by_sha256(self, sha256: str) -> MediaRecord | None:
        with self._session() as session:
            row = session.scalar(sa.select(MediaModel).where(MediaModel.sha256 == sha256))
            return _media_record(row) if row else None

    def add_media(self, media: NewMedia) -> MediaRecord:
        """Store a new media row; a known sha256 returns the existing row untouched."""
        existing = self.get_media_by_sha256(media.sha256)
        if existing is not None:
            return existing
        _require_aware("container_created_at", media.container_created_at)
        try:
            with self._session() as session:
                row = MediaModel(**asdict(media))
                session.add(row)
                _store(session, row)
                return _media_record(row)
        except IntegrityError:
            existing = self.get_media_by_sha256(media.sha256)
            if existing is None:
                raise
            return existing

    def store_paths(self) -> set[str]:
        """The media-store path of every media row: files not named here are orphans."""
        with self._session() as session:
            return set(session.scalars(sa.select(MediaModel.store_path)))

    def list_media(self) -> list[MediaRecord]:
        with self._session() as session:
            rows = session.scalars(sa.select(MediaModel).order_by(MediaModel.id))
            return [_media_record(row) for row in rows]

    def count_media(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(MediaModel)) or 0

    # --- fingerprints ------------------------------------------------------

    def has_fingerprint(self, media_id: int, settings_id: int) -> bool:
        with self._session() as session:
            found = session.scalar(
                sa.select(MediaFingerprintModel.id).where(
                    MediaFingerprintModel.media_id == media_id,
                    MediaFingerprintModel.settings_id == settings_id,
                )
            )
            return found is not None

    def fingerprint_details(self, media_id: int, settings_id: int) -> dict[str, Any] | None:
        """What was recorded with one media's fingerprint (crops, flat frames...), or None if it has none."""
        with self._session() as session:
            return session.scalar(
                sa.select(MediaFingerprintModel.details).where(
                    MediaFingerprintModel.media_id == media_id,
                    MediaFingerprintModel.settings_id == settings_id,
                )
            )

    def add_fingerprint(
        self,
        media_id: int,
        settings_id: int,
        frames: Sequence[FrameRow],
        frames_decoded: int,
        details: dict[str, Any],
        signals: Sequence[SignalValue] = (),
    ) -> None:
        """Store one media's frames and per-video signals for one setting, and that it was fingerprinted.

        Raises `AlreadyExists` when this media already has frames for this setting.
        """
        rows = []
        for frame in frames:
            unknown = set(frame.hashes) - set(HASH_COLUMNS)
            if unknown:
                raise ValueError(f"unknown hash column(s) {sorted(unknown)}; known: {', '.join(HASH_COLUMNS)}")
            row = {"media_id": media_id, "settings_id": settings_id, "idx": frame.index,
                   "timestamp": frame.timestamp, "is_scene_cut": frame.is_scene_cut, "quality": frame.quality,
                   "overlay_masked": frame.overlay_masked}
            row.update({c: None if frame.hashes.get(c) is None else to_signed64(frame.hashes[c])
                        for c in HASH_COLUMNS})
            rows.append(row)
        try:
            with self._session() as session:
                session.execute(sa.insert(MediaFingerprintModel).values(
                    media_id=media_id, settings_id=settings_id, frame_count=len(rows),
                    frames_decoded=frames_decoded, details=details, created_at=utcnow()))
                if rows:
                    session.execute(sa.insert(FrameModel), rows)
                self._insert_signals(session, media_id, settings_id, signals)
        except IntegrityError as error:
            if self.has_fingerprint(media_id, settings_id):
                raise AlreadyExists(
                    f"media {media_id} is already fingerprinted with settings {settings_id}"
                ) from error
            raise

    def frames_for_media(self, media_id: int, settings_id: int) -> list[FrameRow]:
        columns = [getattr(FrameModel, c) for c in HASH_COLUMNS]
        with self._session() as session:
            rows = session.execute(
                sa.select(FrameModel.idx, FrameModel.timestamp, FrameModel.is_scene_cut, FrameModel.quality,
                          FrameModel.overlay_masked, *columns)
                .where(FrameModel.media_id == media_id, FrameModel.settings_id == settings_id)
                .order_by(FrameModel.idx)
            )
            return [
                FrameRow(index=idx, timestamp=timestamp,
                         hashes={c: to_unsigned64(v) for c, v in zip(HASH_COLUMNS, values) if v is not None},
                         is_scene_cut=bool(is_scene_cut), quality=quality, overlay_masked=bool(masked))
                for idx, timestamp, is_scene_cut, quality, masked, *values in rows
            ]

    def frame_column(self, settings_id: int, column: str, after_row_id: int = 0) -> FrameColumn:
        """The frames made with `settings_id` that have `column`, with row id above `after_row_id`, column-wise."""
        import numpy as np

        parts = list(self.iter_frame_column(settings_id, column, after_row_id))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return FrameColumn(empty, empty.copy(), np.zeros(0), np.zeros(0, dtype=np.uint64))
        return FrameColumn(*(np.concatenate([getattr(p, f) for p in parts])
                             for f in ("row_ids", "media_ids", "timestamps", "hashes")))

    def iter_frame_column(self, settings_id: int, column: str, after_row_id: int = 0,
                          batch_rows: int = 1 << 18) -> Iterator[FrameColumn]:
        """`frame_column` in batches of at most `batch_rows` rows, in row-id order: memory stays bounded
        however large the store (an index rebuild streams through it).  Rows come straight from the
        driver's cursor into numpy arrays (no ORM objects)."""
        if column not in HASH_COLUMNS:
            raise ValueError(f"unknown hash column {column!r}; known: {', '.join(HASH_COLUMNS)}")
        value = getattr(FrameModel, column)
        query = (sa.select(FrameModel.id, FrameModel.media_id, FrameModel.timestamp, value)
                 .where(FrameModel.settings_id == settings_id, FrameModel.id > after_row_id, value.is_not(None))
                 .order_by(FrameModel.id))
        with self.database.engine.connect() as connection:
            result = connection.execution_options(stream_results=True, yield_per=batch_rows).execute(query)
            for batch in result.partitions(batch_rows):
                yield FrameColumn(*_columns_of(batch))

    def count_frame_column(self, settings_id: int, column: str) -> int:
        """How many frames of a setting have `column` (a full count: for checks, not for the query path)."""
        if column not in HASH_COLUMNS:
            raise ValueError(f"unknown hash column {column!r}; known: {', '.join(HASH_COLUMNS)}")
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(FrameModel).where(
                FrameModel.settings_id == settings_id, getattr(FrameModel, column).is_not(None))) or 0

    def frame_row_exists(self, settings_id: int, row_id: int) -> bool:
        """Whether `frames` holds row `row_id` of this setting (an index's high-water mark names a real row)."""
        with self._session() as session:
            return session.scalar(sa.select(FrameModel.id).where(FrameModel.id == row_id,
                                                                 FrameModel.settings_id == settings_id)) is not None

    def last_frame_row_id(self, settings_id: int) -> int:
        """The highest `frames` row id of a setting (0 when it has none): what an up-to-date index covers."""
        with self._session() as session:
            return session.scalar(sa.select(sa.func.max(FrameModel.id))
                                  .where(FrameModel.settings_id == settings_id)) or 0

    # --- per-video signals (`media_signals`) -----------------------------------

    @staticmethod
    def _insert_signals(session: Session, media_id: int, settings_id: int, signals: Sequence[SignalValue]) -> None:
        if signals:
            now = utcnow()
            session.execute(sa.insert(MediaSignalModel), [
                {"media_id": media_id, "settings_id": settings_id, "kind": s.kind, "version": s.version,
                 "value": bytes(s.value), "created_at": now} for s in signals])

    def add_media_signals(self, media_id: int, settings_id: int, signals: Sequence[SignalValue]) -> None:
        """Store signal values of a media fingerprinted earlier (a backfill).

        Raises `AlreadyExists` when the media has a value of one of these kinds and versions already.
        """
        try:
            with self._session() as session:
                self._insert_signals(session, media_id, settings_id, signals)
        except IntegrityError as error:
            raise AlreadyExists(f"media {media_id} already has a value of one of the signal kinds "
                                f"{', '.join(f'{s.kind} v{s.version}' for s in signals)}") from error

    def _signal_rows(self, settings_id: int, kind: str, version: int):
        return (MediaSignalModel.settings_id == settings_id, MediaSignalModel.kind == kind,
                MediaSignalModel.version == version)

    def media_signal(self, media_id: int, settings_id: int, kind: str, version: int) -> bytes | None:
        """One media's stored value of a signal kind and version, or None when it has none."""
        with self._session() as session:
            return session.scalar(sa.select(MediaSignalModel.value).where(
                MediaSignalModel.media_id == media_id, *self._signal_rows(settings_id, kind, version)))

    def iter_media_signals(self, settings_id: int, kind: str, version: int, after_row_id: int = 0,
                           batch_rows: int = 256) -> Iterator[SignalRow]:
        """The values of a kind with row id above `after_row_id`, in row-id order, read `batch_rows` at a
        time (a value may be tens of kilobytes: memory stays bounded however many are stored)."""
        after = after_row_id
        while True:
            with self._session() as session:
                batch = session.execute(
                    sa.select(MediaSignalModel.id, MediaSignalModel.media_id, MediaSignalModel.value)
                    .where(*self._signal_rows(settings_id, kind, version), MediaSignalModel.id > after)
                    .order_by(MediaSignalModel.id).limit(batch_rows)).all()
            for row_id, media_id, value in batch:
                yield SignalRow(row_id, media_id, bytes(value))
            if len(batch) < batch_rows:
                return
            after = batch[-1][0]

    def last_media_signal_row_id(self, settings_id: int, kind: str, version: int) -> int:
        """The highest row id of a kind's values (0 when there are none): what an up-to-date index covers."""
        with self._session() as session:
            return session.scalar(sa.select(sa.func.max(MediaSignalModel.id))
                                  .where(*self._signal_rows(settings_id, kind, version))) or 0

    def media_signal_row_exists(self, settings_id: int, kind: str, version: int, row_id: int) -> bool:
        """Whether row `row_id` holds a value of this kind (an index's high-water mark names a real row)."""
        with self._session() as session:
            return session.scalar(sa.select(MediaSignalModel.id).where(
                MediaSignalModel.id == row_id, *self._signal_rows(settings_id, kind, version))) is not None

    def count_media_signals(self, settings_id: int, kind: str, version: int) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(MediaSignalModel)
                                  .where(*self._signal_rows(settings_id, kind, version))) or 0

    def media_without_signal(self, settings_id: int, kind: str, version: int) -> list[int]:
        """Ids of media fingerprinted with `settings_id` that have no value of this kind and version, oldest first."""
        have = sa.select(MediaSignalModel.media_id).where(*self._signal_rows(settings_id, kind, version))
        with self._session() as session:
            return list(session.scalars(
                sa.select(MediaFingerprintModel.media_id)
                .where(MediaFingerprintModel.settings_id == settings_id, MediaFingerprintModel.media_id.not_in(have))
                .order_by(MediaFingerprintModel.media_id)))

    def fingerprinted_media_ids(self, settings_id: int) -> set[int]:
        """Ids of media fingerprinted with `settings_id` (including those with no usable frame)."""
        with self._session() as session:
            return set(session.scalars(
                sa.select(MediaFingerprintModel.media_id).where(MediaFingerprintModel.settings_id == settings_id)
            ))

    def media_without_fingerprint(self, settings_id: int) -> list[int]:
        """Ids of media not yet fingerprinted with `settings_id`, oldest first."""
        done = sa.select(MediaFingerprintModel.media_id).where(
            MediaFingerprintModel.settings_id == settings_id
        )
        with self._session() as session:
            return list(
                session.scalars(
                    sa.select(MediaModel.id).where(MediaModel.id.not_in(done)).order_by(MediaModel.id)
                )
            )

    def count_media_without_fingerprint(self, settings_id: int) -> int:
        """How many media lack a fingerprint with `settings_id`, asked cheaply for every command's start.

        An ingest stores a media and its fingerprint in one transaction, so
        while `settings_id` is the only fingerprint setting ever stored every
        media has one: the answer is 0 after one indexed look at the settings.
        Otherwise two counts (a media has at most one fingerprint per setting),
        not the list `media_without_fingerprint` builds.
        """
        with self._session() as session:
            other = session.scalar(sa.select(FingerprintSettingsModel.id)
                                   .where(FingerprintSettingsModel.id != settings_id).limit(1))
            if other is None:
                return 0
            media = session.scalar(sa.select(sa.func.count()).select_from(MediaModel))
            done = session.scalar(sa.select(sa.func.count()).select_from(MediaFingerprintModel)
                                  .where(MediaFingerprintModel.settings_id == settings_id))
            return max(media - done, 0)

    # --- posts -------------------------------------------------------------

    def add_post(self, post: NewPost) -> PostRecord:
        """Store one appearance of a media; `first_seen_at` defaults to now (UTC).

        Raises `AlreadyExists` when a post with the same archive key is stored.
        """
        validate_published_claim(post)
        values = asdict(post)
        values["first_seen_at"] = post.first_seen_at or utcnow()
        try:
            with self._session() as session:
                row = PostModel(**values)
                session.add(row)
                _store(session, row)
                return _post_record(row)
        except IntegrityError as error:
            existing = post.archive_key and self.get_post_by_archive_key(post.archive_key)
            if existing:
                raise AlreadyExists(
                    f"a post with archive key {post.archive_key!r} is already stored (post "
                    f"{existing.id}); look it up with get_post_by_archive_key"
                ) from error
            raise

    def get_post(self, post_id: int) -> PostRecord | None:
        with self._session() as session:
            row = session.get(PostModel, post_id)
            return _post_record(row) if row else None

    def find_post(self, media_id: int, url: str, archive_key: str | None) -> PostRecord | None:
        """The stored post that `NewPost(media_id, url, archive_key)` would repeat: the same archive key, or
        the same media at the same URL (a re-ingest of the same bytes from the same place)."""
        with self._session() as session:
            same = sa.and_(PostModel.media_id == media_id, PostModel.url == url)
            where = sa.or_(PostModel.archive_key == archive_key, same) if archive_key else same
            row = session.scalar(sa.select(PostModel).where(where).order_by(PostModel.id).limit(1))
            return _post_record(row) if row else None

    def get_post_by_archive_key(self, archive_key: str) -> PostRecord | None:
        with self._session() as session:
            row = session.scalar(sa.select(PostModel).where(PostModel.archive_key == archive_key))
            return _post_record(row) if row else None

    def posts_for_media(self, media_ids: Iterable[int]) -> list[PostRecord]:
        """Posts of these media, earliest claimed publication first (unknown last)."""
        ids = list(media_ids)
        if not ids:
            return []
        with self._session() as session:
            rows = session.scalars(
                sa.select(PostModel)
                .where(PostModel.media_id.in_(ids))
                .order_by(
                    PostModel.published_at.is_(None),
                    PostModel.published_at,
                    PostModel.first_seen_at,
                    PostModel.id,
                )
            )
            return [_post_record(row) for row in rows]

    def post_counts_by_watch(self) -> dict[int, int]:
        """How many posts each watch has stored."""
        with self._session() as session:
            rows = session.execute(sa.select(PostModel.watch_id, sa.func.count()).where(PostModel.watch_id.is_not(None))
                                   .group_by(PostModel.watch_id))
            return {watch_id: count for watch_id, count in rows}

    def list_posts(self) -> list[PostRecord]:
        with self._session() as session:
            return [_post_record(row) for row in session.scalars(sa.select(PostModel).order_by(PostModel.id))]

    def count_posts(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(PostModel)) or 0

    # --- observations --------------------------------------------------------

    def add_observation(self, observation: NewObservation) -> ObservationRecord:
        """Record one revisit of a post; observations are only ever added, never changed."""
        if observation.status not in OBSERVATION_STATUSES:
            raise ValueError(f"observation status {observation.status!r} is not one of "
                             f"{', '.join(OBSERVATION_STATUSES)}")
        if observation.observed_at is None or observation.observed_at.utcoffset() is None:
            raise ValueError("observed_at must be a timezone-aware (UTC) datetime")
        with self._session() as session:
            if session.get(PostModel, observation.post_id) is None:
                raise NotFound(f"no post with id {observation.post_id}")
            row = ObservationModel(**asdict(observation))
            session.add(row)
            _store(session, row)
            return _observation_record(row)

    def observations_for_posts(self, post_ids: Iterable[int]) -> dict[int, list[ObservationRecord]]:
        """Every observation of these posts, oldest first, by post id (posts without any are absent)."""
        ids = list(post_ids)
        found: dict[int, list[ObservationRecord]] = {}
        if not ids:
            return found
        with self._session() as session:
            rows = session.scalars(sa.select(ObservationModel).where(ObservationModel.post_id.in_(ids))
                                   .order_by(ObservationModel.post_id, ObservationModel.observed_at,
                                             ObservationModel.id))
            for row in rows:
                found.setdefault(row.post_id, []).append(_observation_record(row))
        return found

    def count_observations(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(ObservationModel)) or 0

    def revisit_states(self, url_prefixes: Sequence[str] = ("http://", "https://")) -> list[RevisitState]:
        """Each post whose URL starts with one of `url_prefixes`, with when it was last observed, by post id."""
        last = (sa.select(ObservationModel.post_id, sa.func.max(ObservationModel.observed_at).label("at"))
                .group_by(ObservationModel.post_id).subquery())
        query = (sa.select(PostModel.id, PostModel.url, PostModel.first_seen_at, last.c.at)
                 .outerjoin(last, last.c.post_id == PostModel.id)
                 .where(sa.or_(*(PostModel.url.startswith(p, autoescape=True) for p in url_prefixes)))
                 .order_by(PostModel.id))
        with self._session() as session:
            return [RevisitState(post_id=post_id, url=url, first_seen_at=first_seen, last_observed_at=at)
                    for post_id, url, first_seen, at in session.execute(query)]

    # --- matches -----------------------------------------------------------

    def save_match(self, match: NewMatch) -> MatchRecord:
        """Store a computed match, replacing an earlier computation of the same pair."""
        if match.query_media_id == match.stored_media_id:
            raise ValueError(f"a media cannot match itself (media {match.query_media_id})")
        values = asdict(match)  # segments become plain dicts for the JSON column
        values["created_at"] = utcnow()
        key = ("query_media_id", "stored_media_id", "settings_id")
        statement = self._upsert(MatchModel).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=list(key),
            set_={name: statement.excluded[name] for name in values if name not in key},
        ).returning(MatchModel.id)
        with self._session() as session:
            match_id = session.execute(statement).scalar_one()
            return _match_record(session.get(MatchModel, match_id))

    def matches_for_media(self, media_id: int, settings_id: int) -> list[MatchRecord]:
        """Matches involving `media_id` in either direction, with it always as the query side."""
        with self._session() as session:
            rows = session.scalars(
                sa.select(MatchModel)
                .where(
                    MatchModel.settings_id == settings_id,
                    sa.or_(MatchModel.query_media_id == media_id, MatchModel.stored_media_id == media_id),
                )
                .order_by(MatchModel.score.desc(), MatchModel.id)
            )
            records = [_match_record(row) for row in rows]
        return [
            record if record.query_media_id == media_id else _seen_from_other_side(record)
            for record in records
        ]

    def matches_among(self, media_ids: Iterable[int], settings_id: int) -> list[MatchRecord]:
        """Stored matches whose two media are both among `media_ids`, each seen from both sides (one query)."""
        ids = sorted(set(media_ids))
        if len(ids) < 2:
            return []
        with self.database.session() as session:
            rows = session.scalars(
                sa.select(MatchModel)
                .where(
                    MatchModel.settings_id == settings_id,
                    MatchModel.query_media_id.in_(ids),
                    MatchModel.stored_media_id.in_(ids),
                )
                .order_by(MatchModel.id)
            )
            records = [_match_record(row) for row in rows]
        return [seen for record in records for seen in (record, _seen_from_other_side(record))]

    def linked_media(self, media_ids: Iterable[int], settings_id: int, hops: int = 1) -> dict[int, set[int]]:
        """Per media of `media_ids`, every media stored matches link it to, either side, through at most `hops`
        matches (the copies ingest found of it, and theirs): ids only, one query per hop (per 10,000 media asked)
        on the matches' two indexed columns."""
        out: dict[int, set[int]] = {m: set() for m in set(media_ids)}
        frontier = {m: {m} for m in out}  # per media, the media reached at the last hop
        on = MatchModel.settings_id == settings_id
        for _ in range(hops):
            asked = sorted(set().union(*frontier.values()))
            if not asked:
                break
            links: dict[int, set[int]] = {}
            with self.database.session() as session:
                for first in range(0, len(asked), 10_000):  # bound each IN list
                    chunk = asked[first:first + 10_000]
                    statement = sa.union_all(
                        sa.select(MatchModel.query_media_id, MatchModel.stored_media_id).where(
                            on, MatchModel.query_media_id.in_(chunk)),
                        sa.select(MatchModel.stored_media_id, MatchModel.query_media_id).where(
                            on, MatchModel.stored_media_id.in_(chunk)))
                    for media_id, other in session.execute(statement):
                        links.setdefault(media_id, set()).add(other)
            for m, reached in frontier.items():
                new = set().union(*(links.get(n, set()) for n in reached)) - out[m] - {m}
                out[m] |= new
                frontier[m] = new
        return out

    # --- watches -----------------------------------------------------------

    def add_watch(
        self, url: str, kind: str, label: str | None = None, interval_seconds: int = 3600, key: str | None = None
    ) -> WatchRecord:
        """Store a watch.  `key` (at most 64 characters) names its address (the caller's digest of its
        normalisation of `url`): a second watch of the same key raises `AlreadyExists` with the stored one as
        `existing`, even when both are added at once."""
        if kind not in WATCH_KINDS:
            raise ValueError(f"unknown watch kind {kind!r}; use one of {', '.join(WATCH_KINDS)}")
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be positive, got {interval_seconds}")
        try:
            with self._session() as session:
                row = WatchModel(
                    url=url, url_key=key, kind=kind, label=label, interval_seconds=interval_seconds, enabled=True
                )
                session.add(row)
                _store(session, row)
                return _watch_record(row)
        except IntegrityError as error:
            # read in a session of its own: a transaction this insert ran in is aborted (PostgreSQL)
            with self.database.session() as session:
                existing = key and session.scalar(sa.select(WatchModel).where(WatchModel.url_key == key))
                if existing:
                    raise AlreadyExists(f"{url} is watched already: watch {existing.id}",
                                        existing=_watch_record(existing)) from error
            raise

    def _watch_row(self, session, watch_id: int) -> WatchModel:
        row = session.get(WatchModel, watch_id)
        if row is None:
            raise NotFound(f"no watch with id {watch_id}; list the watches to see their ids")
        return row

    def get_watch(self, watch_id: int) -> WatchRecord | None:
        with self._session() as session:
            row = session.get(WatchModel, watch_id)
            return _watch_record(row) if row else None

    def watches_by_id(self, watch_ids: Iterable[int | None]) -> dict[int, WatchRecord]:
        """The watches with these ids (None and unknown ids are skipped), in one query."""
        ids = sorted({i for i in watch_ids if i is not None})
        if not ids:
            return {}
        with self.database.session() as session:
            rows = session.scalars(sa.select(WatchModel).where(WatchModel.id.in_(ids)))
            return {row.id: _watch_record(row) for row in rows}

    def list_watches(self, enabled_only: bool = False) -> list[WatchRecord]:
        query = sa.select(WatchModel).order_by(WatchModel.id)
        if enabled_only:
            query = query.where(WatchModel.enabled.is_(True))
        with self._session() as session:
            return [_watch_record(row) for row in session.scalars(query)]

    def set_watch_enabled(self, watch_id: int, enabled: bool) -> WatchRecord:
        with self._session() as session:
            row = self._watch_row(session, watch_id)
            row.enabled = enabled
            _store(session, row)
            return _watch_record(row)

    def remove_watch(self, watch_id: int) -> None:
        """Delete a watch with its polls and item state; its posts stay (evidence)."""
        with self._session() as session:
            session.delete(self._watch_row(session, watch_id))

    def claim_due_watches(self, now: datetime, delay: Callable[[WatchRecord], float] | None = None) -> list[WatchRecord]:
        """The enabled watches due for a poll at `now`, each claimed by moving its next poll one interval on.

        The claim is one conditional UPDATE per watch, so however many
        schedulers tick at once (threads, daemons on other machines), a due
        watch is claimed by exactly one of them.  `delay(watch)` adds seconds
        (jitter) to the next poll time.
        """
        _require_aware("now", now)
        due = sa.or_(WatchModel.next_poll_at.is_(None), WatchModel.next_poll_at <= now)
        with self._session() as session:
            candidates = [_watch_record(row) for row in session.scalars(
                sa.select(WatchModel).where(WatchModel.enabled.is_(True), due).order_by(WatchModel.id))]
        claimed = []
        for watch in candidates:
            upcoming = now + timedelta(seconds=watch.interval_seconds + (delay(watch) if delay else 0.0))
            with self._session() as session:
                result = session.execute(
                    sa.update(WatchModel).where(WatchModel.id == watch.id, due)
                    .values(next_poll_at=upcoming).execution_options(synchronize_session=False))
            if result.rowcount == 1:
                claimed.append(watch)
        return claimed

    def mark_watch_polled(self, watch_id: int, at: datetime) -> None:
        _require_aware("at", at)
        with self._session() as session:
            self._watch_row(session, watch_id).last_polled_at = at

    # --- polls -------------------------------------------------------------

    def start_poll(self, watch_id: int, holder: str | None = None) -> PollRecord:
        """A new "running" poll of a watch, run by `holder` (whose heartbeat keeps it alive)."""
        with self._session() as session:
            self._watch_row(session, watch_id)
            now = utcnow()
            row = PollModel(
                watch_id=watch_id,
                started_at=now,
                items_seen=0,
                items_new=0,
                items_failed=0,
                errors=[],
                status=POLL_RUNNING,
                holder=holder,
                heartbeat_at=now if holder else None,
            )
            session.add(row)
            _store(session, row)
            return _poll_record(row)

    def get_poll(self, poll_id: int) -> PollRecord | None:
        with self._session() as session:
            row = session.get(PollModel, poll_id)
            return _poll_record(row) if row else None

    def poll_listed(self, poll_id: int, items_seen: int, items_pending: int, handed_over: bool = False) -> PollRecord:
        """The listing is read: `items_pending` items go to ingest jobs (a poll with none is finished now).

        `handed_over`: the items wait in a durable queue, so the poll no longer
        depends on its holder staying alive (the holder is cleared).
        """
        with self._session() as session:
            row = session.get(PollModel, poll_id)
            if row is None:
                raise NotFound(f"no poll with id {poll_id}")
            row.items_seen = items_seen
            row.items_pending = items_pending
            if handed_over:
                row.holder = None
            if items_pending == 0 and row.status == POLL_RUNNING:
                row.status = "partial" if row.items_failed else "ok"
                row.finished_at = utcnow()
            _store(session, row)
            return _poll_record(row)

    def count_poll_item(self, poll_id: int, watch_id: int, archive_key: str, url: str, outcome: str, *,
                        post_id: int | None = None, error: str | None = None, kind: str | None = None,
                        next_attempt_at: datetime | None = None) -> bool:
        """Record what became of one item of a poll, in one transaction; the last item closes the poll.

        Idempotent per poll: an item already counted by this poll (an ingest
        job run again after its process died) updates the item's state but
        not the poll's counters.  Returns whether the poll counted it now.
        """
        if outcome not in ITEM_OUTCOMES:
            raise ValueError(f"item outcome {outcome!r} is not one of {', '.join(ITEM_OUTCOMES)}")
        _require_aware("next_attempt_at", next_attempt_at)
        with self.transaction() as repo, repo._session() as session:
            # lock the poll row first: counting is serialised per poll on both databases
            session.execute(sa.update(PollModel).where(PollModel.id == poll_id)
                            .values(items_pending=PollModel.items_pending)
                            .execution_options(synchronize_session=False))
            before = repo.get_watch_item(watch_id, archive_key)
            counted = before is None or before.poll_id != poll_id
            if outcome == "failed":
                values = {"url": url, "status": ITEM_FAILED, "last_error": error, "next_attempt_at": next_attempt_at}
            else:
                values = {"url": url, "status": ITEM_STORED, "post_id": post_id, "last_error": None,
                          "next_attempt_at": None}
            repo._record_item(watch_id, archive_key, {**values, "poll_id": poll_id})
            row = session.get(PollModel, poll_id)
            if row is None or not counted or row.status != POLL_RUNNING:
                return False
            row.items_new += outcome == "stored"
            if outcome == "failed":
                row.items_failed += 1
                row.errors = [*row.errors, {"archive_key": archive_key, "url": url, "kind": kind or "unknown",
                                            "error": error}]
            if row.items_pending is not None:
                row.items_pending = max(row.items_pending - 1, 0)
                if row.items_pending == 0:
                    row.status = "partial" if row.items_failed else "ok"
                    row.finished_at = utcnow()
            return True

    def heartbeat_polls(self, holder: str) -> int:
        """Say that `holder` is alive for every poll it runs; returns how many."""
        with self._session() as session:
            result = session.execute(
                sa.update(PollModel)
                .where(PollModel.holder == holder, PollModel.status == POLL_RUNNING)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False))
            return result.rowcount

    def running_polls(self) -> list[PollRecord]:
        with self._session() as session:
            rows = session.scalars(sa.select(PollModel).where(PollModel.status == POLL_RUNNING).order_by(PollModel.id))
            return [_poll_record(row) for row in rows]

    def interrupt_poll(self, poll_id: int, reason: str) -> bool:
        """Close a poll that is still "running" as "interrupted", saying why; False if it ended meanwhile."""
        with self._session() as session:
            result = session.execute(
                sa.update(PollModel).where(PollModel.id == poll_id, PollModel.status == POLL_RUNNING)
                .values(status=POLL_INTERRUPTED, finished_at=utcnow()).execution_options(synchronize_session=False))
            if result.rowcount != 1:
                return False
            row = session.get(PollModel, poll_id)
            row.errors = [*row.errors, {"archive_key": None, "url": None, "error": reason}]
            return True

    def finish_poll(
        self,
        poll_id: int,
        items_seen: int,
        items_new: int,
        items_failed: int,
        errors: list[dict[str, Any]],
        status: str,
    ) -> PollRecord:
        if status not in POLL_END_STATES:
            raise ValueError(f"poll status {status!r} is not one of {', '.join(POLL_END_STATES)}")
        with self._session() as session:
            row = session.get(PollModel, poll_id)
            if row is None:
                raise NotFound(f"no poll with id {poll_id}")
            row.finished_at = utcnow()
            row.items_seen = items_seen
            row.items_new = items_new
            row.items_failed = items_failed
            row.errors = list(errors)
            row.status = status
            _store(session, row)
            return _poll_record(row)

    def list_polls(self, watch_id: int | None = None, limit: int = 50) -> list[PollRecord]:
        """The newest polls first, of one watch or of all."""
        query = sa.select(PollModel).order_by(PollModel.started_at.desc(), PollModel.id.desc()).limit(limit)
        if watch_id is not None:
            query = query.where(PollModel.watch_id == watch_id)
        with self._session() as session:
            return [_poll_record(row) for row in session.scalars(query)]

    # --- watch items -------------------------------------------------------

    def get_watch_item(self, watch_id: int, archive_key: str) -> WatchItemRecord | None:
        with self._session() as session:
            row = session.scalar(
                sa.select(WatchItemModel).where(
                    WatchItemModel.watch_id == watch_id, WatchItemModel.archive_key == archive_key
                )
            )
            return _watch_item_record(row) if row else None

    def _record_item(self, watch_id: int, archive_key: str, values: dict[str, Any]) -> WatchItemRecord:
        """Insert or update one item's state in a single statement; attempts counts up."""
        values = {**values, "last_attempt_at": utcnow()}
        statement = self._upsert(WatchItemModel).values(
            watch_id=watch_id, archive_key=archive_key, attempts=1, **values
        )
        statement = statement.on_conflict_do_update(
            index_elements=["watch_id", "archive_key"],
            set_={**values, "attempts": WatchItemModel.attempts + 1},
        )
        with self._session() as session:
            session.execute(statement)
        item = self.get_watch_item(watch_id, archive_key)
        assert item is not None
        return item

    def record_item_stored(
        self, watch_id: int, archive_key: str, url: str, post_id: int | None
    ) -> WatchItemRecord:
        return self._record_item(
            watch_id,
            archive_key,
            {
                "url": url,
                "status": ITEM_STORED,
                "post_id": post_id,
                "last_error": None,
                "next_attempt_at": None,
            },
        )

    def record_item_failed(
        self, watch_id: int, archive_key: str, url: str, error: str, next_attempt_at: datetime | None
    ) -> WatchItemRecord:
        """Note a failed attempt; `next_attempt_at` None means do not retry."""
        _require_aware("next_attempt_at", next_attempt_at)
        return self._record_item(
            watch_id,
            archive_key,
            {"url": url, "status": ITEM_FAILED, "last_error": error, "next_attempt_at": next_attempt_at},
        )

    def items_due_for_retry(self, watch_id: int, now: datetime) -> list[WatchItemRecord]:
        _require_aware("now", now)
        with self._session() as session:
            rows = session.scalars(
                sa.select(WatchItemModel)
                .where(
                    WatchItemModel.watch_id == watch_id,
                    WatchItemModel.status == ITEM_FAILED,
                    WatchItemModel.next_attempt_at <= now,
                )
                .order_by(WatchItemModel.next_attempt_at, WatchItemModel.id)
            )
            return [_watch_item_record(row) for row in rows]

    # --- daemon lock -------------------------------------------------------

    def acquire_lock(self, name: str, holder: str, stale_after_seconds: float) -> bool:
        """Take the lock `name` for `holder`; True if it is now held by `holder`.

        Succeeds when the lock is free, already ours (refreshing it), or its
        holder's heartbeat is older than `stale_after_seconds`.
        """
        for _ in range(3):
            now = utcnow()
            try:
                with self._session() as session:
                    session.execute(
                        sa.insert(DaemonLockModel).values(
                            name=name, holder=holder, acquired_at=now, heartbeat_at=now
                        )
                    )
                return True
            except IntegrityError:
                pass  # someone holds it (maybe us, maybe stale): try to take it over
            cutoff = now - timedelta(seconds=stale_after_seconds)
            acquired_at = sa.case(
                (DaemonLockModel.holder == holder, DaemonLockModel.acquired_at),
                else_=sa.literal(now, UTCDateTime()),
            )
            with self._session() as session:
                result = session.execute(
                    sa.update(DaemonLockModel)
                    .where(
                        DaemonLockModel.name == name,
                        sa.or_(DaemonLockModel.holder == holder, DaemonLockModel.heartbeat_at < cutoff),
                    )
                    .values(holder=holder, acquired_at=acquired_at, heartbeat_at=now)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    return True
                still_held = session.scalar(
                    sa.select(DaemonLockModel.name).where(DaemonLockModel.name == name)
                )
            if still_held is not None:
                return False
            # released between our INSERT and UPDATE: try again
        return False

    def take_over_lock(self, name: str, dead_holder: str, holder: str) -> bool:
        """Take lock `name` from `dead_holder`, known dead; False if someone else holds it now."""
        now = utcnow()
        with self._session() as session:
            result = session.execute(
                sa.update(DaemonLockModel)
                .where(DaemonLockModel.name == name, DaemonLockModel.holder == dead_holder)
                .values(holder=holder, acquired_at=now, heartbeat_at=now)
                .execution_options(synchronize_session=False))
            return result.rowcount == 1

    def lock_holder(self, name: str) -> tuple[str, datetime] | None:
        """Who holds lock `name` and when they last said so, or None."""
        with self._session() as session:
            row = session.get(DaemonLockModel, name)
            return (row.holder, row.heartbeat_at) if row else None

    def heartbeat_lock(self, name: str, holder: str) -> bool:
        """Refresh our heartbeat; False means the lock is no longer ours."""
        with self._session() as session:
            result = session.execute(
                sa.update(DaemonLockModel)
                .where(DaemonLockModel.name == name, DaemonLockModel.holder == holder)
                .values(heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def release_lock(self, name: str, holder: str) -> None:
        """Give the lock up; a no-op when `holder` does not hold it."""
        with self._session() as session:
            session.execute(
                sa.delete(DaemonLockModel)
                .where(DaemonLockModel.name == name, DaemonLockModel.holder == holder)
                .execution_options(synchronize_session=False)
            )
