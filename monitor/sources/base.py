"""The contract between sources and the poll loop.

A source lists a watch URL into `ListedItem`s (cheap, keyed by yt-dlp's
download-archive key so the caller can skip what it already stored) and
downloads one item into a verified `DownloadedItem`.  Every failure is a
`SourceError` (defined in `monitor.failures`) with a stable `kind` and a
one-line message saying what happened, so the poll loop can record both
against the item and carry on with the next item.

Times are the platform's *claims* (`ClaimedTime`, with precision and source),
never our observation; see `storage.records`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from monitor.failures import (  # noqa: F401 (re-exported: the sources' side of the contract)
    DownloadFailed,
    LimitExceeded,
    ListingFailed,
    NotAVideo,
    SourceError,
    UnsupportedURL,
)
from storage.records import SOURCE_TELEGRAM_TIME, NewPost  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class ClaimedTime:
    """When a platform, feed or server says something was published."""

    at: datetime  # timezone-aware UTC; midnight UTC for day precision
    precision: str  # storage.records.PRECISION_*
    source: str  # storage.records.SOURCE_* or SOURCE_TELEGRAM_TIME

    def as_json(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "precision": self.precision, "source": self.source}


@dataclass(frozen=True)
class ListedItem:
    """One post found by listing a watch, not yet downloaded."""

    url: str  # what `Source.download` hands to yt-dlp
    archive_key: str | None  # "<extractor> <id>"; None when it cannot be known before download
    title: str | None = None
    claimed: ClaimedTime | None = None  # the listing's own claim (feed date, Telegram time)
    extra: dict[str, Any] = field(default_factory=dict)  # listing fields kept for raw metadata


@dataclass(frozen=True)
class PostMetadata:
    """Everything `storage.records.NewPost` needs except what only the caller knows."""

    url: str
    archive_key: str | None
    platform: str | None = None
    platform_post_id: str | None = None
    uploader: str | None = None
    uploader_id: str | None = None
    channel: str | None = None
    title: str | None = None
    description: str | None = None
    published_at: datetime | None = None
    published_precision: str | None = None
    published_source: str | None = None
    view_count: int | None = None
    like_count: int | None = None
    repost_count: int | None = None
    comment_count: int | None = None
    original_url: str | None = None
    raw_metadata: dict[str, Any] = field(default_factory=dict)

    def to_new_post(
        self, media_id: int, *, watch_id: int | None = None, first_seen_at: datetime | None = None
    ) -> NewPost:
        return NewPost(
            media_id=media_id,
            watch_id=watch_id,
            first_seen_at=first_seen_at,
            **{name: getattr(self, name) for name in self.__dataclass_fields__},
        )


@dataclass(frozen=True)
class DownloadedItem:
    """A downloaded, ffprobe-verified file inside the caller's work dir."""

    path: Path
    info: dict[str, Any]  # yt-dlp's sanitised info dict (also written beside `path`)
    post: PostMetadata


class Source(Protocol):
    def list_items(self, url: str, kind: str | None = None) -> list[ListedItem]: ...

    def download(self, item: ListedItem, workdir: Path) -> DownloadedItem: ...
