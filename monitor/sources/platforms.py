"""Turning yt-dlp's info dicts into `PostMetadata`, with each platform's quirks.

yt-dlp normalises most fields, but not everything means the same everywhere:

* the archive key `"<extractor> <id>"` is unique per site except for the
  generic extractor (its id is the file's basename: every `clip.mp4` on the
  web would collide) and Telegram (its id is the message number alone, equal
  across channels).  Those two are keyed by URL and by `channel/number`;
* the generic extractor's `timestamp` is some page's Last-Modified or a
  JSON-LD date, so it counts only for a direct media URL (it is then that
  file's Last-Modified); for pages the source adds JSON-LD and media claims;
* Telegram posts have no uploader, only a channel; their URL gets `?single`.

Time claims are ranked: finer precision first, then the most credible source.
Every claim found is kept in `raw_metadata["claims"]`.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from yt_dlp.utils import make_archive_id, parse_count

from monitor.sources.base import SOURCE_TELEGRAM_TIME, ClaimedTime, ListedItem, PostMetadata
from monitor.sources.feeds import claim_at, parse_iso
from storage.records import (
    PRECISION_DAY,
    PRECISION_SECOND,
    SOURCE_ATOM_PUBLISHED,
    SOURCE_HTTP_LAST_MODIFIED,
    SOURCE_JSONLD_UPLOAD_DATE,
    SOURCE_RSS_PUBDATE,
    SOURCE_YTDLP_TIMESTAMP,
    SOURCE_YTDLP_UPLOAD_DATE,
)

GENERIC = "Generic"
MAX_ARCHIVE_KEY = 512  # storage.models: posts.archive_key, watch_items.archive_key
_TELEGRAM_POST = re.compile(r"https?://(?:t|telegram)\.me/(?:s/)?(?P<channel>[\w-]+)/(?P<id>\d+)")

# Most credible first; precision is compared before this.
CLAIM_RANKING = (
    SOURCE_YTDLP_TIMESTAMP,
    SOURCE_TELEGRAM_TIME,
    SOURCE_ATOM_PUBLISHED,
    SOURCE_RSS_PUBDATE,
    SOURCE_JSONLD_UPLOAD_DATE,
    SOURCE_HTTP_LAST_MODIFIED,
    SOURCE_YTDLP_UPLOAD_DATE,
)


def archive_key(extractor_key: str, video_id: str | None, url: str) -> str | None:
    """yt-dlp's `"<extractor> <id>"`, made unique where yt-dlp's is not (see module doc).

    A generic key longer than the stored column (a URL of thousands of
    characters) keeps the URL's first 400 characters and its SHA-256.
    """
    if extractor_key == GENERIC:
        key = make_archive_id(GENERIC, urllib.parse.urldefrag(url).url)
        if len(key) > MAX_ARCHIVE_KEY:
            key = f"{key[:408]} sha256:{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}"
        return key
    if extractor_key == "TelegramEmbed" and (m := _TELEGRAM_POST.match(url)):
        return make_archive_id(extractor_key, f"{m['channel']}/{m['id']}")
    return make_archive_id(extractor_key, video_id) if video_id else None


def platform_name(info: dict[str, Any]) -> str:
    """"youtube", "tiktok", "telegram", "twitter"...; the host name for the generic extractor."""
    if info.get("extractor_key") == GENERIC:
        host = urllib.parse.urlsplit(info.get("webpage_url") or info.get("url") or "").hostname or "unknown"
        return host.removeprefix("www.")
    return str(info.get("extractor") or info.get("extractor_key") or "unknown").split(":")[0].lower()


def info_claims(info: dict[str, Any]) -> list[ClaimedTime]:
    """The time claims an info dict makes (see the module doc for the generic extractor)."""
    if info.get("extractor_key") == GENERIC:
        if is_direct_media(info) and info.get("timestamp"):
            return [_from_epoch(info["timestamp"], SOURCE_HTTP_LAST_MODIFIED)]
        return []
    for key in ("timestamp", "release_timestamp"):
        if isinstance(info.get(key), (int, float)):
            return [_from_epoch(info[key], SOURCE_YTDLP_TIMESTAMP)]
    claims = []
    for key in ("upload_date", "release_date"):
        if re.fullmatch(r"\d{8}", str(info.get(key) or "")):
            day = datetime.strptime(info[key], "%Y%m%d").replace(tzinfo=UTC)
            claims.append(ClaimedTime(day, PRECISION_DAY, SOURCE_YTDLP_UPLOAD_DATE))
            break
    return claims


def is_direct_media(info: dict[str, Any]) -> bool:
    """Whether a generic result is the media URL itself (not a page pointing at media)."""
    return bool(info.get("direct")) and info.get("webpage_url") == info.get("url")


def jsonld_claims(html: str) -> list[ClaimedTime]:
    """`uploadDate` of each schema.org VideoObject in the page's JSON-LD (date-only → day)."""
    claims = []
    for block in re.findall(r'<script[^>]+type=["\']application/ld\+json["\'][^>]*>(.*?)</script>', html, re.S | re.I):
        try:
            data = json.loads(block)
        except ValueError:
            continue
        for node in _walk(data):
            text = node.get("uploadDate") if "VideoObject" in str(node.get("@type")) else None
            at = parse_iso(text.strip()) if isinstance(text, str) else None
            if at:
                claims.append(claim_at(at, has_time="T" in text, source=SOURCE_JSONLD_UPLOAD_DATE))
    return claims


def best_claim(claims: list[ClaimedTime]) -> ClaimedTime | None:
    """The most precise claim; among equally precise ones the most credible."""
    return min(
        claims,
        key=lambda c: (c.precision != PRECISION_SECOND, CLAIM_RANKING.index(c.source) if c.source in CLAIM_RANKING else 99),
        default=None,
    )


def post_metadata(
    info: dict[str, Any], item: ListedItem, *, extra_claims: list[ClaimedTime] = ()
) -> PostMetadata:
    """`PostMetadata` for a downloaded item; `info` must be sanitised (JSON-safe)."""
    claims = [c for c in [item.claimed, *info_claims(info), *extra_claims] if c]
    best = best_claim(claims)
    extractor_key = info.get("extractor_key") or GENERIC
    fields = dict(
        url=info.get("webpage_url") or item.url,
        archive_key=item.archive_key or archive_key(extractor_key, info.get("id"), info.get("webpage_url") or item.url),
        platform=platform_name(info),
        platform_post_id=_str(info.get("id")),
        uploader=_str(info.get("uploader")),
        uploader_id=_str(info.get("uploader_id")),
        channel=_str(info.get("channel")),
        # a generic title is often just the file name: the listing's (feed, post text) is better
        title=(item.title or _str(info.get("title"))) if extractor_key == GENERIC else (_str(info.get("title")) or item.title),
        description=_str(info.get("description")) or _str(item.extra.get("description")) or _str(item.extra.get("text")),
        view_count=_int(info.get("view_count")),
        like_count=_int(info.get("like_count")),
        repost_count=_int(info.get("repost_count")),
        comment_count=_int(info.get("comment_count")),
        original_url=_str(item.extra.get("forwarded_from")),
    )
    fields.update(_QUIRKS.get(fields["platform"], lambda info, item: {})(info, item))
    return PostMetadata(
        **fields,
        published_at=best.at if best else None,
        published_precision=best.precision if best else None,
        published_source=best.source if best else None,
        raw_metadata={
            "claims": [c.as_json() for c in claims],
            "listing": item.extra,
            "yt_dlp": info,
        },
    )


def _telegram(info: dict[str, Any], item: ListedItem) -> dict[str, Any]:
    m = _TELEGRAM_POST.match(info.get("webpage_url") or item.url)
    listing = item.extra
    return {
        key: value
        for key, value in {
            "url": f"https://t.me/{m['channel']}/{m['id']}" if m else None,
            "platform_post_id": f"{m['channel']}/{m['id']}" if m else None,
            "uploader": info.get("channel") or listing.get("author"),
            "uploader_id": info.get("channel_id") or (m and m["channel"]),
            "view_count": _int(info.get("view_count")) or _int(parse_count(listing.get("views"))),
        }.items()
        if value is not None
    }


def _youtube(info: dict[str, Any], item: ListedItem) -> dict[str, Any]:
    # yt-dlp's uploader_id is the @handle; the stable UC... id is channel_id
    return {"uploader_id": _str(info.get("uploader_id")) or _str(info.get("channel_id"))}


def _tiktok(info: dict[str, Any], item: ListedItem) -> dict[str, Any]:
    # uploader is the @handle, uploader_id the numeric user id, channel the display name
    return {"channel": _str(info.get("channel")) or _str(info.get("creator"))}


_QUIRKS = {"telegram": _telegram, "youtube": _youtube, "tiktok": _tiktok}


def _walk(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _from_epoch(seconds: float, source: str) -> ClaimedTime:
    return ClaimedTime(datetime.fromtimestamp(seconds, UTC), PRECISION_SECOND, source)


def _str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
