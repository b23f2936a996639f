"""Plain records that the storage layer hands outward.

SQLAlchemy models never leave `storage/`; everything else in the project sees
these frozen dataclasses.  Times are timezone-aware UTC `datetime`s.

Evidence rule: a post's `published_at` is the platform's *claim* (with its
precision and source), `first_seen_at` is *our observation*.  They are never
merged and never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# Stored string keys are schema: add new values, never rename old ones.
PRECISION_SECOND = "second"
PRECISION_DAY = "day"
PRECISIONS = (PRECISION_SECOND, PRECISION_DAY)

# A publication claim outside this range is a platform bug or a placeholder (1970-01-01, 9999-12-31), never
# evidence: online video before 1990 did not exist, and clocks are at most a day off.
PLAUSIBLE_SINCE = datetime(1990, 1, 1, tzinfo=UTC)
PLAUSIBLE_AHEAD = timedelta(days=1)


def implausible_time(at: datetime, now: datetime | None = None) -> str | None:
    """Why `at` cannot be a real publication time (before 1990, or more than a day ahead), or None."""
    now = now or datetime.now(UTC)
    if at < PLAUSIBLE_SINCE:
        return f"{at.isoformat()} is before {PLAUSIBLE_SINCE.year}"
    if at > now + PLAUSIBLE_AHEAD:
        return f"{at.isoformat()} is more than a day in the future"
    return None

SOURCE_YTDLP_TIMESTAMP = "yt-dlp timestamp"
SOURCE_YTDLP_UPLOAD_DATE = "yt-dlp upload_date"
SOURCE_RSS_PUBDATE = "rss pubDate"
SOURCE_ATOM_PUBLISHED = "atom published"
SOURCE_HTTP_LAST_MODIFIED = "http last-modified"
SOURCE_JSONLD_UPLOAD_DATE = "json-ld uploadDate"
SOURCE_TELEGRAM_TIME = "telegram time"  # the <time datetime> of a post on a t.me/s/ page
SOURCE_USER = "user-supplied"


@dataclass(frozen=True)
class NewMedia:
    """A verified file about to enter the store (see `SqlRepository.add_media`)."""

    sha256: str
    size_bytes: int
    store_path: str  # relative to the data dir, e.g. "media/ab/abcdef....mp4"
    duration: float | None
    width: int | None
    height: int | None
    fps: float | None
    video_codec: str | None
    audio_codec: str | None
    container_format: str | None
    # exiftool's CreateDate exactly as reported; None when absent or "0000:00:00 00:00:00"
    container_created_raw: str | None
    container_created_at: datetime | None  # parsed, UTC, when the raw value parses
    exiftool: dict[str, Any] = field(default_factory=dict)
    ffprobe: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaRecord(NewMedia):
    id: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class NewPost:
    """One appearance of a media file somewhere."""

    media_id: int
    url: str
    platform: str | None = None
    platform_post_id: str | None = None
    # yt-dlp's download-archive key "<extractor> <id>"; unique when set
    archive_key: str | None = None
    uploader: str | None = None
    uploader_id: str | None = None
    channel: str | None = None
    title: str | None = None
    description: str | None = None
    published_at: datetime | None = None
    published_precision: str | None = None  # PRECISION_*; None iff published_at is None
    published_source: str | None = None  # SOURCE_*; None iff published_at is None
    first_seen_at: datetime | None = None  # defaults to now (UTC) when stored
    view_count: int | None = None
    like_count: int | None = None
    repost_count: int | None = None
    comment_count: int | None = None
    original_url: str | None = None  # the original post, for reposts where the platform says
    watch_id: int | None = None
    raw_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PostRecord(NewPost):
    id: int = 0


@dataclass(frozen=True)
class FrameRow:
    """One sampled frame's fingerprint: its hashes by `frames` column (`storage.models.HASH_COLUMNS`)."""

    index: int
    timestamp: float  # seconds from the start of the media
    hashes: dict[str, int]  # column -> unsigned 64-bit perceptual hash; "hash" (the whole picture) always
    is_scene_cut: bool = False
    quality: float = 0.0
    overlay_masked: bool = False  # a still overlay was masked out before hashing


@dataclass(frozen=True)
class FrameColumn:
    """The frames of one setting that have a value in one hash column, column-wise, in row-id order.

    `row_ids` are the `frames` primary keys: an index that has seen every row up
    to some id catches up by reading only the rows after it.
    """

    row_ids: "Any"  # numpy int64 array
    media_ids: "Any"  # numpy int64 array
    timestamps: "Any"  # numpy float64 array
    hashes: "Any"  # numpy uint64 array

    def __len__(self) -> int:
        return len(self.row_ids)


@dataclass(frozen=True)
class SignalValue:
    """One video's value of a per-video signal kind (`fingerprints.signals.MediaSignal`), as stored."""

    kind: str  # the kind's stored name
    version: int  # the kind's version when the value was computed
    value: bytes


@dataclass(frozen=True)
class SignalRow:
    """A stored signal value with its `media_signals` row id: indexes catch up from the last id they saw."""

    row_id: int
    media_id: int
    value: bytes


@dataclass(frozen=True)
class MatchSegmentRecord:
    query_start: float
    query_end: float
    stored_start: float
    stored_end: float


@dataclass(frozen=True)
class NewMatch:
    """A match between two media, precomputed so reports need not recompute it."""

    query_media_id: int
    stored_media_id: int
    settings_id: int
    query_coverage: float
    stored_coverage: float
    mirrored: bool
    speed: float
    score: float
    segments: list[MatchSegmentRecord]
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MatchRecord(NewMatch):
    id: int = 0
    created_at: datetime | None = None


# --- monitoring -------------------------------------------------------------

WATCH_KINDS = ("post", "listing", "rss", "atom", "telegram")


@dataclass(frozen=True)
class WatchRecord:
    id: int
    url: str
    kind: str  # one of WATCH_KINDS
    label: str | None
    interval_seconds: int
    enabled: bool
    created_at: datetime
    last_polled_at: datetime | None = None
    next_poll_at: datetime | None = None


@dataclass(frozen=True)
class PollRecord:
    id: int
    watch_id: int
    started_at: datetime
    finished_at: datetime | None
    items_seen: int
    items_new: int
    items_failed: int
    errors: list[dict[str, Any]]
    status: str  # "running", "ok", "partial", "failed", "interrupted"
    holder: str | None = None  # the process running it: `<host>:<pid>:<token>`
    heartbeat_at: datetime | None = None
    items_pending: int | None = None  # handed to ingest jobs and not done; None while listing


@dataclass(frozen=True)
class WatchItemRecord:
    """The poll state of one listed item of a watch, keyed by its archive key."""

    id: int
    watch_id: int
    archive_key: str
    url: str
    status: str  # "stored" or "failed"
    attempts: int
    last_error: str | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None
    post_id: int | None
    poll_id: int | None = None  # the poll that last counted it


# --- observations (revisits) ------------------------------------------------

# What a revisit saw of a post.  Stored string keys are schema: add values, never rename.
STATUS_UP = "up"
STATUS_REMOVED = "removed"
STATUS_PRIVATE = "private"
STATUS_GEO_BLOCKED = "geo-blocked"
STATUS_UNREACHABLE = "unreachable"  # we could not tell: network, server or extractor trouble
OBSERVATION_STATUSES = (STATUS_UP, STATUS_REMOVED, STATUS_PRIVATE, STATUS_GEO_BLOCKED, STATUS_UNREACHABLE)

METHOD_YTDLP_METADATA = "yt-dlp metadata"  # extract_info(download=False): the page, never the media
METHOD_HTTP_HEAD = "http head"  # a direct media URL: HEAD (or a one-byte GET where HEAD is refused)


@dataclass(frozen=True)
class NewObservation:
    """One revisit of a post: what we saw, when, and how.

    An observation is ours, like `first_seen_at`, never the platform's claim;
    it is never overwritten.  `changes` holds what differs from the previous
    sighting of the post (title, description: {"old", "new"}; `media`: the
    platform's description of the file, per field); `media_changed` says the
    platform now describes a different file (duration, format, size, ETag), a
    follow-up for someone to download and compare.
    """

    post_id: int
    observed_at: datetime
    status: str  # one of OBSERVATION_STATUSES
    method: str  # METHOD_*
    tool: str  # e.g. "yt-dlp 2025.06.30"
    http_status: int | None = None
    error_kind: str | None = None  # e.g. "http-404", "dns", "timeout" (see monitor.jobs.revisit.classify_failure)
    error: str | None = None  # one line, when not up
    title: str | None = None
    description: str | None = None
    view_count: int | None = None
    like_count: int | None = None
    repost_count: int | None = None
    comment_count: int | None = None
    media: dict[str, Any] = field(default_factory=dict)  # duration, format_id, filesize, etag, last_modified...
    changes: dict[str, Any] = field(default_factory=dict)
    media_changed: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # the raw answer: response headers, trimmed info dict


@dataclass(frozen=True)
class ObservationRecord(NewObservation):
    id: int = 0


@dataclass(frozen=True)
class RevisitState:
    """What the revisit schedule needs of a post, without its raw metadata."""

    post_id: int
    url: str
    first_seen_at: datetime
    last_observed_at: datetime | None


# --- the investigator's workspace: corrections, deletions, tracking, alerts, accounts, audit --------

CLAIM_SOURCE_USER = "user"  # `claims.source`: a person supplied it (the platform's claim stays on the post)
DELETED_MEDIA = "media"
DELETED_POST = "post"
ALERT_TRACKED = "tracked"  # matches footage on the tracked list
ALERT_MATCH = "match"  # matches any stored footage ([alerts] on_any_match)
ROLES = ("admin", "editor", "viewer")


@dataclass(frozen=True)
class ClaimRecord:
    """A publication time a person gave for a post: kept beside the platform's claim, never replacing it.

    With `correction` the person says the platform's claim is wrong, and the
    report orders the post by this claim instead (showing both).
    """

    id: int
    post_id: int
    published_at: datetime
    precision: str  # PRECISION_*
    source: str  # CLAIM_SOURCE_USER
    correction: bool
    author: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class MergeRecord:
    """Post `post_id` duplicates post `into_post_id` (the survivor); both rows stay."""

    id: int
    post_id: int
    into_post_id: int
    author: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class DeletionRecord:
    """What was deleted (a media file with its posts, or one post), who did it, when and why."""

    id: int
    kind: str  # DELETED_MEDIA or DELETED_POST
    sha256: str
    media_id: int | None
    post_id: int | None
    url: str | None
    author: str
    reason: str
    deleted_at: datetime
    details: dict[str, Any]


@dataclass(frozen=True)
class TrackedRecord:
    """Footage on the tracked list (a stored media)."""

    id: int
    media_id: int
    label: str | None
    source: str
    author: str
    active: bool
    created_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None


@dataclass(frozen=True)
class AlertDeliveryRecord:
    id: int
    alert_id: int
    target: str  # the notification URL's scheme and position in [alerts] notify, never its secrets
    ok: bool
    error: str | None
    attempted_at: datetime


@dataclass(frozen=True)
class AlertRecord:
    id: int
    kind: str  # ALERT_TRACKED or ALERT_MATCH
    post_id: int
    media_id: int
    tracked_id: int | None
    matched_media_id: int | None
    message: str
    created_at: datetime
    acked_at: datetime | None = None
    acked_by: str | None = None
    deliveries: tuple[AlertDeliveryRecord, ...] = ()


@dataclass(frozen=True)
class UserRecord:
    """A web account, without its password hash (see `SqlRepository.password_hash`)."""

    id: int
    name: str
    role: str  # one of ROLES
    created_at: datetime
    created_by: str


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    via: str  # "cli" or "web"
    action: str
    target: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class PostSearch:
    """What `provenance posts` looks for; every field narrows the search, None means any."""

    url: str | None = None  # substring of the URL
    uploader: str | None = None  # the uploader's name or id, exactly
    platform: str | None = None
    watch_ids: tuple[int, ...] | None = None
    text: str | None = None  # substring of the title or description
    claimed_from: datetime | None = None  # the platform's claim, inclusive
    claimed_to: datetime | None = None  # exclusive
    seen_from: datetime | None = None  # first seen, inclusive
    seen_to: datetime | None = None  # exclusive
    media_ids: tuple[int, ...] | None = None
    include_merged: bool = False
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class MediaPosts:
    """A media's posts, summed up in SQL: how many, the earliest platform claim, first and last sighting."""

    media_id: int
    posts: int
    earliest_claim: datetime | None
    first_seen: datetime
    last_seen: datetime
