"""Where monitored media comes from: listing watch URLs and downloading their posts.

A poll loop uses this package in three steps::

    kind = classify_watch_url(url)                 # at `watch add` time, offline
    for item in source.list_items(url, kind):      # cheap, flat listing
        if item.archive_key not in stored: ...
        got = source.download(item, workdir)       # verified file + PostMetadata

Everything that touches yt-dlp goes through `YtDlpSource`; feeds, Telegram
channel pages and per-platform field mapping are small helpers beside it.
"""

from monitor.sources.base import (
    SOURCE_TELEGRAM_TIME,
    ClaimedTime,
    DownloadedItem,
    DownloadFailed,
    LimitExceeded,
    ListedItem,
    ListingFailed,
    NotAVideo,
    PostMetadata,
    Source,
    SourceError,
    UnsupportedURL,
)
from monitor.sources.classify import classify_watch_url

_LAZY = ("DomainLimiter", "YtDlpSource")  # importing yt-dlp takes a second: only when a command needs it


def __getattr__(name: str):
    if name in _LAZY:
        from monitor.sources import ytdlp

        return getattr(ytdlp, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "SOURCE_TELEGRAM_TIME",
    "ClaimedTime",
    "DomainLimiter",
    "DownloadFailed",
    "DownloadedItem",
    "LimitExceeded",
    "ListedItem",
    "ListingFailed",
    "NotAVideo",
    "PostMetadata",
    "Source",
    "SourceError",
    "UnsupportedURL",
    "YtDlpSource",
    "classify_watch_url",
]
