"""SQLAlchemy models: the schema as Python, for queries and for Alembic's metadata.

These classes never leave `storage/`; the repository turns rows into the
dataclasses of `storage.records`.  The schema itself is created by the
hand-written migrations in `alembic/versions/`, which must stay in step with
this file (a test compares them).

Portability rules, so one schema serves SQLite and PostgreSQL:
- JSON columns are JSONB on PostgreSQL and JSON text on SQLite.
- Times are stored as naive UTC and always come back timezone-aware.
- Unsigned 64-bit frame hashes are stored as signed BIGINT (two's complement);
  the repository converts at the boundary.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored as naive UTC that always reads back timezone-aware.

    Naive datetimes are refused: whether they meant local time or UTC cannot be
    known afterwards, and these times are evidence.
    """

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} cannot be stored: pass a timezone-aware "
                "datetime, e.g. datetime.now(timezone.utc)"
            )
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONType,
        list[Any]: JSONType,
    }


class FingerprintSettingsModel(Base):
    __tablename__ = "fingerprint_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(128), unique=True)
    algorithm: Mapped[str] = mapped_column(sa.String(64))
    params: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaModel(Base):
    __tablename__ = "media"

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(sa.BigInteger)
    store_path: Mapped[str] = mapped_column(sa.Text)
    duration: Mapped[float | None]
    width: Mapped[int | None]
    height: Mapped[int | None]
    fps: Mapped[float | None]
    video_codec: Mapped[str | None] = mapped_column(sa.String(64))
    audio_codec: Mapped[str | None] = mapped_column(sa.String(64))
    container_format: Mapped[str | None] = mapped_column(sa.String(128))
    container_created_raw: Mapped[str | None] = mapped_column(sa.String(64))
    container_created_at: Mapped[datetime | None]
    exiftool: Mapped[dict[str, Any]]
    ffprobe: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MediaFingerprintModel(Base):
    """That a media was fingerprinted with a setting, even if no frame was usable."""

    __tablename__ = "media_fingerprints"
    __table_args__ = (sa.UniqueConstraint("media_id", "settings_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id", ondelete="CASCADE"))
    settings_id: Mapped[int] = mapped_column(sa.ForeignKey("fingerprint_settings.id"))
    frame_count: Mapped[int]
    frames_decoded: Mapped[int]
    details: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostModel(Base):
    __tablename__ = "posts"
    __table_args__ = (
        sa.CheckConstraint(
            "published_precision IS NULL OR published_precision IN ('second', 'day')",
            name="ck_posts_published_precision_known",
        ),
        sa.CheckConstraint(
            "(published_at IS NULL) = (published_precision IS NULL) "
            "AND (published_at IS NULL) = (published_source IS NULL)",
            name="ck_posts_published_claim_complete",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id"), index=True)
    url: Mapped[str] = mapped_column(sa.Text)
    platform: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    platform_post_id: Mapped[str | None] = mapped_column(sa.String(256))
    archive_key: Mapped[str | None] = mapped_column(sa.String(512), unique=True)
    uploader: Mapped[str | None] = mapped_column(sa.Text, index=True)
    uploader_id: Mapped[str | None] = mapped_column(sa.Text)
    channel: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    published_at: Mapped[datetime | None] = mapped_column(index=True)
    published_precision: Mapped[str | None] = mapped_column(sa.String(16))
    published_source: Mapped[str | None] = mapped_column(sa.String(64))
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    view_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    like_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    repost_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    comment_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    original_url: Mapped[str | None] = mapped_column(sa.Text)
    # Posts are evidence: deleting a watch keeps them and forgets the link.
    watch_id: Mapped[int | None] = mapped_column(sa.ForeignKey("watches.id", ondelete="SET NULL"), index=True)
    raw_metadata: Mapped[dict[str, Any]]


# The `frames` columns that hold a 64-bit hash of one view of the frame (`fingerprints.signals.FrameView.column`).
HASH_COLUMNS = ("hash", "centre_hash", "motion_hash", "window_hash", "surround_hash")


class FrameModel(Base):
    __tablename__ = "frames"
    __table_args__ = (sa.UniqueConstraint("media_id", "settings_id", "idx"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id", ondelete="CASCADE"))
    settings_id: Mapped[int] = mapped_column(sa.ForeignKey("fingerprint_settings.id"), index=True)
    idx: Mapped[int]
    timestamp: Mapped[float]
    hash: Mapped[int] = mapped_column(sa.BigInteger)  # unsigned 64-bit, two's complement
    is_scene_cut: Mapped[bool]
    quality: Mapped[float]
    centre_hash: Mapped[int | None] = mapped_column(sa.BigInteger)  # settings v3 on; same encoding
    overlay_masked: Mapped[bool] = mapped_column(server_default=sa.false(), default=False)
    motion_hash: Mapped[int | None] = mapped_column(sa.BigInteger)  # settings v4 on, still shots only; same encoding
    # frames of composites (a window, a player, a split screen; 0010 on): the window and what is around it
    window_hash: Mapped[int | None] = mapped_column(sa.BigInteger)
    surround_hash: Mapped[int | None] = mapped_column(sa.BigInteger)


class MediaSignalModel(Base):
    """One video's value of a per-video signal kind (`fingerprints.signals.MediaSignal`), as bytes (0008)."""

    __tablename__ = "media_signals"
    __table_args__ = (
        sa.UniqueConstraint("media_id", "settings_id", "kind", "version"),
        sa.Index("ix_media_signals_settings_id_kind_version_id", "settings_id", "kind", "version", "id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id", ondelete="CASCADE"))
    settings_id: Mapped[int] = mapped_column(sa.ForeignKey("fingerprint_settings.id"))
    kind: Mapped[str] = mapped_column(sa.String(64))  # `MediaSignal.name`: schema, never renamed
    version: Mapped[int]  # `MediaSignal.version`: values of another version are never compared
    value: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class MatchModel(Base):
    __tablename__ = "matches"
    __table_args__ = (sa.UniqueConstraint("query_media_id", "stored_media_id", "settings_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    query_media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id", ondelete="CASCADE"))
    stored_media_id: Mapped[int] = mapped_column(
        sa.ForeignKey("media.id", ondelete="CASCADE"), index=True
    )
    settings_id: Mapped[int] = mapped_column(sa.ForeignKey("fingerprint_settings.id"))
    query_coverage: Mapped[float]
    stored_coverage: Mapped[float]
    mirrored: Mapped[bool]
    speed: Mapped[float]
    score: Mapped[float]
    segments: Mapped[list[Any]]
    evidence: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- monitoring (migration 0002) -------------------------------------------


class WatchModel(Base):
    __tablename__ = "watches"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.Text)
    # 0009: SHA-256 (hex) of the address key (`monitor.sources.watch_urls.same_watch_key`), unique; NULL for
    # older watches
    url_key: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    label: Mapped[str | None] = mapped_column(sa.Text)
    interval_seconds: Mapped[int]
    enabled: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_polled_at: Mapped[datetime | None]
    next_poll_at: Mapped[datetime | None]  # 0005: claimed atomically by whoever schedules the next poll


class PollModel(Base):
    __tablename__ = "polls"

    id: Mapped[int] = mapped_column(primary_key=True)
    watch_id: Mapped[int] = mapped_column(sa.ForeignKey("watches.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    items_seen: Mapped[int]
    items_new: Mapped[int]
    items_failed: Mapped[int]
    errors: Mapped[list[Any]]
    status: Mapped[str] = mapped_column(sa.String(16), index=True)
    holder: Mapped[str | None] = mapped_column(sa.Text)  # 0005: `<host>:<pid>:<token>` running it
    heartbeat_at: Mapped[datetime | None]  # 0005: its holder's last sign of life
    items_pending: Mapped[int | None]  # 0005: items handed to ingest jobs, not done yet; NULL while listing


class WatchItemModel(Base):
    __tablename__ = "watch_items"
    __table_args__ = (sa.UniqueConstraint("watch_id", "archive_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    watch_id: Mapped[int] = mapped_column(sa.ForeignKey("watches.id", ondelete="CASCADE"))
    archive_key: Mapped[str] = mapped_column(sa.String(512))
    url: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(16))
    attempts: Mapped[int]
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    last_attempt_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    post_id: Mapped[int | None] = mapped_column(sa.ForeignKey("posts.id", ondelete="SET NULL"))
    poll_id: Mapped[int | None]  # 0005: the poll that last counted this item


class DaemonLockModel(Base):
    """Who runs the scheduler; a stale heartbeat lets another process take over."""

    __tablename__ = "daemon_locks"

    name: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.Text)
    acquired_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]


# --- observations (migration 0006) ------------------------------------------


class ObservationModel(Base):
    """One revisit of a post (`storage.records.NewObservation`); rows are only ever added."""

    __tablename__ = "observations"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('up', 'removed', 'private', 'geo-blocked', 'unreachable')",
            name="ck_observations_status_known",
        ),
        sa.Index("ix_observations_post_id_observed_at", "post_id", "observed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Observations are evidence: a post that has them cannot be deleted.
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("posts.id"))
    observed_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(16))
    method: Mapped[str] = mapped_column(sa.String(32))
    tool: Mapped[str] = mapped_column(sa.String(128))
    http_status: Mapped[int | None]
    error_kind: Mapped[str | None] = mapped_column(sa.String(32))
    error: Mapped[str | None] = mapped_column(sa.Text)
    title: Mapped[str | None] = mapped_column(sa.Text)
    description: Mapped[str | None] = mapped_column(sa.Text)
    view_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    like_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    repost_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    comment_count: Mapped[int | None] = mapped_column(sa.BigInteger)
    media: Mapped[dict[str, Any]]
    changes: Mapped[dict[str, Any]]
    media_changed: Mapped[bool]
    details: Mapped[dict[str, Any]]


# --- the investigator's workspace (migration 0007) ---------------------------

# Substring searches of posts (URL, title, description) use trigram indexes on PostgreSQL (pg_trgm, made by
# migration 0007 when the server has the extension).  They are not in this metadata: SQLite has no such index,
# and tests/storage/test_migrations.py leaves these names out when it compares the models with the migrations.
POSTGRESQL_TRIGRAM_INDEXES = {"ix_posts_url_trgm": "url", "ix_posts_title_trgm": "title",
                              "ix_posts_description_trgm": "description"}


class ClaimModel(Base):
    """A publication time a person supplied for a post, beside the platform's claim (never replacing it)."""

    __tablename__ = "claims"
    __table_args__ = (
        sa.CheckConstraint("precision IN ('second', 'day')", name="ck_claims_precision_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("posts.id"), index=True)
    published_at: Mapped[datetime]
    precision: Mapped[str] = mapped_column(sa.String(16))
    source: Mapped[str] = mapped_column(sa.String(32))
    correction: Mapped[bool]  # the person says the platform's claim is wrong: this one orders the report
    author: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostMergeModel(Base):
    """That a post duplicates another (the survivor); both rows stay."""

    __tablename__ = "post_merges"

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("posts.id"), unique=True)
    into_post_id: Mapped[int] = mapped_column(sa.ForeignKey("posts.id"), index=True)
    author: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DeletionModel(Base):
    """What was deleted, by whom and why: the rows are gone, this stays (no foreign keys on purpose)."""

    __tablename__ = "deletions"
    __table_args__ = (sa.CheckConstraint("kind IN ('media', 'post')", name="ck_deletions_kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    media_id: Mapped[int | None]
    post_id: Mapped[int | None]
    url: Mapped[str | None] = mapped_column(sa.Text)
    author: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    deleted_at: Mapped[datetime] = mapped_column(default=utcnow)
    details: Mapped[dict[str, Any]]


class TrackedModel(Base):
    """Footage on the watch list: a new post whose media matches it raises an alert."""

    __tablename__ = "tracked"

    id: Mapped[int] = mapped_column(primary_key=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id"), index=True)
    label: Mapped[str | None] = mapped_column(sa.Text)
    source: Mapped[str] = mapped_column(sa.Text)  # the file name or URL it was tracked from
    author: Mapped[str] = mapped_column(sa.Text)
    active: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None]
    removed_by: Mapped[str | None] = mapped_column(sa.Text)


class AlertModel(Base):
    """A new post that matches tracked footage (kind `tracked`) or, with [alerts] on_any_match, any (`match`)."""

    __tablename__ = "alerts"
    __table_args__ = (sa.CheckConstraint("kind IN ('tracked', 'match')", name="ck_alerts_kind_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    post_id: Mapped[int] = mapped_column(sa.ForeignKey("posts.id"), index=True)
    media_id: Mapped[int] = mapped_column(sa.ForeignKey("media.id"))
    tracked_id: Mapped[int | None] = mapped_column(sa.ForeignKey("tracked.id", ondelete="SET NULL"))
    matched_media_id: Mapped[int | None] = mapped_column(sa.ForeignKey("media.id", ondelete="SET NULL"))
    message: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    acked_at: Mapped[datetime | None] = mapped_column(index=True)
    acked_by: Mapped[str | None] = mapped_column(sa.Text)


class AlertDeliveryModel(Base):
    """One attempt to send an alert to one notification URL (named without its secrets)."""

    __tablename__ = "alert_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(sa.ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    target: Mapped[str] = mapped_column(sa.Text)
    ok: Mapped[bool]
    error: Mapped[str | None] = mapped_column(sa.Text)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserModel(Base):
    """An account of the web application; the password only as an Argon2id hash."""

    __tablename__ = "users"
    __table_args__ = (sa.CheckConstraint("role IN ('admin', 'editor', 'viewer')", name="ck_users_role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.Text)
    role: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(sa.Text)


class AuditModel(Base):
    """Who changed what, when, through which door (cli or web); rows are only ever added."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(sa.Text)
    via: Mapped[str] = mapped_column(sa.String(16))
    action: Mapped[str] = mapped_column(sa.String(64))
    target: Mapped[str | None] = mapped_column(sa.Text)
    details: Mapped[dict[str, Any]]
