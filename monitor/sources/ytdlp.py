"""The one wrapper around yt-dlp: list a watch cheaply, download one item safely.

Why a wrapper: yt-dlp prints to stdout, raises a handful of differently
shaped errors, writes caches to the home directory and keys items by
`"<extractor> <id>"`.  Here it is quiet (its log goes to Python logging),
writes only inside the caller's work dir (cache off, `paths` pinned), and
every failure becomes a `SourceError` with one line saying what happened.

Options users know from the yt-dlp CLI come from config.toml's [ytdlp] table
(see `CONFIG_KEYS`).  A fresh `YoutubeDL` is made per call, so one
`YtDlpSource` can serve several threads; `DomainLimiter` caps downloads
running at once per host.

Local URLs need nothing special: the generic extractor fetches 127.0.0.1
like any host (no `force_generic_extractor` needed); it recognises a direct
media file by its Content-Type, and pages by og:video / JSON-LD / embeds.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tempfile
import threading
import urllib.parse
from datetime import UTC, datetime
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.networking import Request
from yt_dlp.networking.exceptions import HTTPError, IncompleteRead, TransportError
from yt_dlp.utils import ContentTooShortError, UnsupportedError, YoutubeDLError, parse_bytes, unified_timestamp

from monitor import ffprobe  # module import: monitor.ffprobe imports this package back
from monitor.sources.base import (
    ClaimedTime,
    DownloadedItem,
    DownloadFailed,
    ListedItem,
    ListingFailed,
    NotAVideo,
    SourceError,
)
from monitor.sources.classify import classify_watch_url, extractor_for
from monitor.sources.feeds import feed_kind, parse_feed
from monitor.sources.platforms import GENERIC, archive_key, is_direct_media, jsonld_claims, post_metadata
from monitor.sources.telegram import list_channel_page
from storage.records import PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED, SOURCE_YTDLP_TIMESTAMP

log = logging.getLogger(__name__)

DEFAULT_FORMAT = "bv*[height<=1080]+ba/b[height<=1080]/b"
MAX_PAGE_BYTES = 10 * 1024 * 1024  # feeds and channel pages larger than this are refused


def _size(value: Any) -> int:
    size = parse_bytes(str(value)) if not isinstance(value, int) else value
    if size is None:
        raise ValueError(f"{value!r} is not a size; write bytes or e.g. '50K', '4.2M', '1G'")
    return size


# config.toml [ytdlp] key -> (YoutubeDL option, converter)
CONFIG_KEYS: dict[str, tuple[str, Any]] = {
    "format": ("format", str),
    "merge_output_format": ("merge_output_format", str),
    "cookies_file": ("cookiefile", lambda v: str(Path(v).expanduser())),
    "proxy": ("proxy", str),
    "rate_limit": ("ratelimit", _size),
    "max_filesize": ("max_filesize", _size),
    "sleep_requests": ("sleep_interval_requests", float),
    "sleep_interval": ("sleep_interval", float),
    "socket_timeout": ("socket_timeout", float),
    "retries": ("retries", int),
}
LIMITER_KEY = "concurrent_per_domain"  # used by DomainLimiter, not by YoutubeDL


def ytdlp_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """YoutubeDL options from a [ytdlp] config table; unknown keys are an error."""
    unknown = set(config) - set(CONFIG_KEYS) - {LIMITER_KEY}
    if unknown:
        raise ValueError(
            f"unknown [ytdlp] option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted([*CONFIG_KEYS, LIMITER_KEY]))}"
        )
    options = {"format": DEFAULT_FORMAT, "merge_output_format": "mp4"}
    for key, value in config.items():
        if key in CONFIG_KEYS:
            option, convert = CONFIG_KEYS[key]
            options[option] = convert(value)
    if "retries" in options:
        options["fragment_retries"] = options["extractor_retries"] = options["retries"]
    if "sleep_interval" in options:
        options["max_sleep_interval"] = options["sleep_interval"]
    return options


class DomainLimiter:
    """At most `per_domain` downloads at once per host name (www. ignored)."""

    def __init__(self, per_domain: int = 1) -> None:
        if per_domain < 1:
            raise ValueError(f"{LIMITER_KEY} must be at least 1, got {per_domain}")
        self.per_domain = per_domain
        self._lock = threading.Lock()
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}

    @contextlib.contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host = (urllib.parse.urlsplit(url).hostname or "").removeprefix("www.")
        with self._lock:
            semaphore = self._semaphores.setdefault(host, threading.BoundedSemaphore(self.per_domain))
        with semaphore:
            yield


class YtDlpSource:
    """Lists watch URLs and downloads their items with yt-dlp (see `monitor.sources.Source`)."""

    def __init__(self, config: Mapping[str, Any] | None = None, *, logger: logging.Logger | None = None) -> None:
        config = dict(config or {})
        self.options = ytdlp_options(config)
        self.limiter = DomainLimiter(int(config.get(LIMITER_KEY, 1)))
        self.logger = logger or logging.getLogger("yt_dlp")

    # --- listing ----------------------------------------------------------

    def list_items(self, url: str, kind: str | None = None) -> list[ListedItem]:
        """The items a watch URL lists now, each keyed by its archive key where knowable.

        `kind` is the watch's stored kind (`classify_watch_url` when None).
        Raises ListingFailed when the URL cannot be fetched or read.
        """
        kind = kind or classify_watch_url(url)
        try:
            if kind == "post":
                items = [ListedItem(url=url, archive_key=None)]
            elif kind in ("rss", "atom"):
                items = parse_feed(self._fetch(url), url)
            elif kind == "telegram":
                items = list_channel_page(self._fetch(url).decode("utf-8", "replace"), url)
            elif kind == "listing":
                items = self._list_any(url)
            else:
                raise ValueError(f"unknown watch kind {kind!r}")
        except ListingFailed:
            raise
        except SourceError as exc:
            raise ListingFailed(f"listing {url} failed: {exc}") from exc
        except YoutubeDLError as exc:
            raise ListingFailed(f"listing {url} failed: {explain(exc, url)[1]}") from exc
        return [item if item.archive_key else _with_key(item) for item in items]

    def _list_any(self, url: str) -> list[ListedItem]:
        if extractor_for(url):
            return self._list_flat(url)
        # only the generic extractor accepts it: look at what the URL serves
        with self._ydl() as ydl, ydl.urlopen(Request(url)) as response:
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if content_type.startswith(("video/", "audio/")):
                return [ListedItem(url=url, archive_key=None, extra={"content_type": content_type})]
            body = response.read(MAX_PAGE_BYTES)
        if kind := feed_kind(body[:4096]):
            log.debug("%s is an %s feed", url, kind)
            return parse_feed(body, url)
        if b"tgme_widget_message" in body:
            return list_channel_page(body.decode("utf-8", "replace"), url)
        return self._list_flat(url)

    def _list_flat(self, url: str) -> list[ListedItem]:
        with self._ydl(extract_flat="in_playlist", skip_download=True) as ydl:
            result = ydl.sanitize_info(ydl.extract_info(url, download=False))
        entries = result.get("entries") if result.get("_type") == "playlist" else [result]
        items = []
        for entry in entries or []:
            if not entry:
                continue
            extractor = entry.get("ie_key") or entry.get("extractor_key")
            is_reference = entry.get("_type") in ("url", "url_transparent")
            item_url = entry.get("url") if is_reference else entry.get("webpage_url") or url
            timestamp = entry.get("timestamp") if extractor not in (None, GENERIC) else None
            items.append(
                ListedItem(
                    url=item_url,
                    archive_key=archive_key(extractor, entry.get("id"), item_url) if extractor else None,
                    title=entry.get("title"),
                    claimed=ClaimedTime(_utc(timestamp), PRECISION_SECOND, SOURCE_YTDLP_TIMESTAMP)
                    if isinstance(timestamp, (int, float)) else None,
                    extra={"listing_url": url, "listing_title": result.get("title")},
                )
            )
        return items

    def _fetch(self, url: str) -> bytes:
        with self._ydl() as ydl, ydl.urlopen(Request(url)) as response:
            body = response.read(MAX_PAGE_BYTES + 1)
        if len(body) > MAX_PAGE_BYTES:
            raise ListingFailed(f"{url} is larger than {MAX_PAGE_BYTES // 2**20} MiB; not a feed or channel page")
        return body

    # --- downloading ------------------------------------------------------

    def download(self, item: ListedItem, workdir: Path) -> DownloadedItem:
        """Download `item` into a new directory inside `workdir`, verify it, describe it.

        Raises DownloadFailed or NotAVideo; on failure nothing it wrote remains.
        """
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix="download-", dir=workdir))
        try:
            with self.limiter.slot(item.url):
                info = self._download_into(item.url, target)
            path = Path(info["requested_downloads"][0]["filepath"]) if info.get("requested_downloads") else None
            if path is None or not path.is_file():
                limit = self.options.get("max_filesize")
                hint = f" (is it larger than max_filesize={limit} bytes?)" if limit else ""
                raise DownloadFailed(f"yt-dlp downloaded nothing from {item.url}{hint}")
            try:
                ffprobe.verify_video(path)
            except NotAVideo as exc:
                raise NotAVideo(f"{item.url} did not give a playable video: {exc}") from exc
            claims = self._generic_claims(info)
            return DownloadedItem(path=path, info=info, post=post_metadata(info, item, extra_claims=claims))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    def _download_into(self, url: str, target: Path) -> dict[str, Any]:
        options = dict(
            paths={"home": str(target), "temp": str(target)},
            outtmpl="media.%(ext)s",
            writeinfojson=True,
            noplaylist=True,
            playlist_items="1",  # a post with several videos: its first one
            overwrites=True,
        )
        try:
            with self._ydl(**options) as ydl:
                info = ydl.extract_info(url, download=True)
                info = ydl.sanitize_info(info)
        except YoutubeDLError as exc:
            error_class, message = explain(exc, url)
            raise error_class(message) from exc
        if info.get("_type") == "playlist":
            if not info.get("entries"):
                raise NotAVideo(f"{url} lists no video to download")
            info = info["entries"][0]
        return info

    def _generic_claims(self, info: dict[str, Any]) -> list[ClaimedTime]:
        """Claims a generic page makes beyond yt-dlp's ambiguous `timestamp` (see platforms).

        The page's JSON-LD uploadDate, and the Last-Modified of the media URL
        it pointed to (a HEAD request: yt-dlp does not keep those headers).
        """
        page, media = info.get("webpage_url"), info.get("url")
        if info.get("extractor_key") != GENERIC or is_direct_media(info) or not page:
            return []
        claims = []
        try:
            claims += jsonld_claims(self._fetch(page).decode("utf-8", "replace"))
            if media and media.startswith(("http://", "https://")):
                with self._ydl() as ydl, ydl.urlopen(Request(media, method="HEAD")) as response:
                    modified = unified_timestamp(response.headers.get("Last-Modified"))
                if modified:
                    claims.append(ClaimedTime(_utc(modified), PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED))
        except (SourceError, YoutubeDLError) as exc:
            log.info("no further time claims from %s: %s", page, exc)
        return claims

    # --- revisiting -----------------------------------------------------

    def metadata(self, url: str) -> dict[str, Any]:
        """What yt-dlp extracts about `url` now, without downloading the media: its sanitised info dict.

        Raises SourceError whose `__cause__` is yt-dlp's own exception (for
        `monitor.jobs.revisit.classify_failure`).
        """
        try:
            with self.limiter.slot(url), self._ydl(noplaylist=True, playlist_items="1") as ydl:
                info = ydl.sanitize_info(ydl.extract_info(url, download=False))
        except YoutubeDLError as exc:
            error_class, message = explain(exc, url)
            raise error_class(message) from exc
        if info.get("_type") == "playlist":
            entries = [entry for entry in info.get("entries") or [] if entry]
            if not entries:
                raise NotAVideo(f"{url} lists no video any more")
            info = entries[0]
        return info

    def head(self, url: str) -> tuple[int, dict[str, str]]:
        """The status and headers a media URL answers now, without its body.

        A HEAD request, or a one-byte ranged GET where the server refuses HEAD.
        Raises SourceError whose `__cause__` is yt-dlp's networking error.
        """
        try:
            with self.limiter.slot(url), self._ydl() as ydl:
                try:
                    with ydl.urlopen(Request(url, method="HEAD")) as response:
                        return response.status, dict(response.headers.items())
                except HTTPError as exc:
                    if exc.status not in (405, 501):
                        raise
                with ydl.urlopen(Request(url, headers={"Range": "bytes=0-0"})) as response:
                    return response.status, dict(response.headers.items())
        except YoutubeDLError as exc:
            error_class, message = explain(exc, url)
            raise error_class(message) from exc

    def _ydl(self, **overrides: Any) -> YoutubeDL:
        return YoutubeDL(
            {
                **self.options,
                "quiet": True,
                "noprogress": True,
                "no_color": True,
                "logger": self.logger,
                "cachedir": False,
                **overrides,
            }
        )


def _with_key(item: ListedItem) -> ListedItem:
    """`item` with the archive key its URL has before download (extractor routing, offline)."""
    ie = extractor_for(item.url)
    key = archive_key(ie.ie_key(), ie.get_temp_id(item.url), item.url) if ie else archive_key(GENERIC, None, item.url)
    return ListedItem(url=item.url, archive_key=key, title=item.title, claimed=item.claimed, extra=item.extra)


def explain(exc: BaseException, url: str) -> tuple[type[SourceError], str]:
    """The SourceError class and one-line message for a yt-dlp failure on `url`."""
    chain = list(_causes(exc))
    for cause in chain:
        if isinstance(cause, HTTPError):
            return DownloadFailed, f"HTTP {cause.status} {cause.reason or ''}".rstrip() + f" from {url}"
        if isinstance(cause, ContentTooShortError):
            return DownloadFailed, (
                f"transfer cut short: got {cause.downloaded} of {cause.expected} bytes from {url}; "
                "the server closed the connection early (retry later or raise retries)"
            )
        if isinstance(cause, IncompleteRead):
            return DownloadFailed, f"transfer cut short: incomplete read from {url}; retry later or raise retries"
        if isinstance(cause, ConnectionRefusedError):
            return DownloadFailed, f"connection refused by {urllib.parse.urlsplit(url).netloc}; is the server up?"
        if isinstance(cause, UnsupportedError):
            return NotAVideo, f"no video found at {url}: yt-dlp recognises no media, player or feed in the page"
    text = " ".join(_one_line(cause) for cause in chain)
    if m := re.search(r"(\d+) bytes read, (\d+) more expected", text):
        return DownloadFailed, (
            f"transfer cut short: got {m[1]} bytes, {m[2]} more were announced, from {url}; "
            "the server closed the connection early (retry later or raise retries)"
        )
    for cause in chain:
        if isinstance(cause, TransportError):
            if "refused" in str(cause).lower():
                return DownloadFailed, f"connection refused by {urllib.parse.urlsplit(url).netloc}; is the server up?"
            return DownloadFailed, f"network error from {url}: {_one_line(cause)}"
    return DownloadFailed, f"yt-dlp failed on {url}: {_one_line(exc)}"


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc_info = getattr(exc, "exc_info", None)
        nxt = getattr(exc, "cause", None) or (exc_info[1] if exc_info else None)
        if isinstance(nxt, BaseException) and id(nxt) not in seen:
            exc = nxt
        else:
            exc = exc.__cause__ or exc.__context__


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in re.split(r"[\r\n]+", str(exc)) if line.strip()]
    return re.sub(r"^(ERROR: )?(\[\w+\] )?", "", " ".join(lines)) or type(exc).__name__


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
