"""The one wrapper around yt-dlp: list a watch cheaply, download one item safely.

Why a wrapper: yt-dlp prints to stdout, raises differently shaped errors
that change between releases, writes caches to the home directory, keys
items by `"<extractor> <id>"`, and blocks in network reads we cannot
interrupt.  Here every yt-dlp listing and download runs in a child process
(`monitor.sources.isolated`) bounded by the [limits] settings (a deadline, a
download size, an address space); it is quiet (its log is collected, not
printed), writes only inside the caller's work dir (cache off, `paths`
pinned), and every failure becomes a `SourceError` with a stable kind and one
line saying what happened.

Failures are classified by what happened, not by yt-dlp's wording
(`explain`): the exception types in the chain (yt-dlp's HTTPError with its
status, IncompleteRead and ContentTooShortError with their byte counts,
GeoRestrictedError, UnsupportedError, ExtractorError.expected), the socket
errors underneath (`monitor.sources.fetch.network_failure`), and what the
child saw on the way: the errors its requests raised and the retries it
gave up on (yt-dlp reports those only as text), the byte counts of its
progress, whether an extractor asked for a login.  Nothing recognised: the
raw message, shown as is, kind "unknown".

Feeds and pages are read by `monitor.sources.fetch` (bounded, unpacked in
steps), not by yt-dlp.  Options users know from the yt-dlp CLI come from
config.toml's [ytdlp] table (see `CONFIG_KEYS`).  A fresh `YoutubeDL` is
made per call, so one `YtDlpSource` can serve several threads;
`DomainLimiter` caps downloads running at once per host.

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
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

from yt_dlp import YoutubeDL
from yt_dlp.networking.exceptions import HTTPError, IncompleteRead, ProxyError
from yt_dlp.utils import (
    ContentTooShortError,
    DownloadCancelled,
    ExtractorError,
    GeoRestrictedError,
    UnavailableVideoError,
    UnsupportedError,
    parse_bytes,
    unified_timestamp,
)

from monitor.failures import http_kind, one_line
from monitor.limits import Limits, format_size
from monitor.sources import isolated
from monitor.sources.base import (
    ClaimedTime,
    DownloadedItem,
    DownloadFailed,
    LimitExceeded,
    ListedItem,
    ListingFailed,
    NotAVideo,
    SourceError,
    UnsupportedURL,
)
from monitor.sources.classify import classify_watch_url, extractor_for
from monitor.sources.feeds import feed_kind, parse_feed
from monitor.sources.fetch import Fetcher, Page, is_http, linked, network_failure
from monitor.sources.platforms import GENERIC, archive_key, is_direct_media, jsonld_claims, post_metadata
from monitor.sources.telegram import list_channel_page
from monitor.sources.watch_urls import channel_preview
from storage.records import PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED, SOURCE_YTDLP_TIMESTAMP

log = logging.getLogger(__name__)

DEFAULT_FORMAT = "bv*[height<=1080]+ba/b[height<=1080]/b"
DEFAULT_SOCKET_TIMEOUT = 20.0  # yt-dlp's own default
NETWORK_KINDS = ("dns", "refused", "timeout", "network", "tls", "proxy")  # no answer reached the extractor
ERROR_CLASSES = {cls.__name__: cls for cls in (DownloadFailed, ListingFailed, NotAVideo, LimitExceeded, SourceError)}


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
    "compat_options": ("compat_opts", lambda v: [str(o) for o in ([v] if isinstance(v, str) else v)]),
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
    """Lists watch URLs and downloads their items with yt-dlp (see `monitor.sources.Source`).

    `limits` ([limits] in config.toml) bound every listing and download; see `monitor.limits`.
    """

    def __init__(self, config: Mapping[str, Any] | None = None, *, limits: Limits | None = None,
                 logger: logging.Logger | None = None) -> None:
        config = dict(config or {})
        self.options = ytdlp_options(config)
        self.limits = limits or Limits()
        self.options.setdefault("max_filesize", self.limits.max_download_bytes)
        self.limiter = DomainLimiter(int(config.get(LIMITER_KEY, 1)))
        self.logger = logger or logging.getLogger("yt_dlp")
        proxy = self.options.get("proxy")
        self._socks = bool(proxy) and not proxy.startswith(("http://", "https://"))
        self.fetcher = Fetcher(self.limits, socket_timeout=self.socket_timeout, proxy=None if self._socks else proxy,
                               cookies_file=self.options.get("cookiefile"))

    @property
    def socket_timeout(self) -> float:
        return float(self.options.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT)

    # --- listing ----------------------------------------------------------

    def list_items(self, url: str, kind: str | None = None) -> list[ListedItem]:
        """The items a watch URL lists now, each keyed by its archive key where knowable.

        `kind` is the watch's stored kind (`classify_watch_url` when None).
        Raises ListingFailed (with the failure's kind) when the URL cannot be fetched or read.
        """
        kind = kind or classify_watch_url(url)
        try:
            if kind == "post":
                items = [ListedItem(url=url, archive_key=None)]
            elif kind in ("rss", "atom"):
                items = parse_feed(self._page(url).body, url)
            elif kind == "telegram":
                page_url = channel_preview(url)
                items = list_channel_page(self._page(page_url).body.decode("utf-8", "replace"), page_url)
            elif kind == "listing":
                items = self._list_any(url)
            else:
                raise ValueError(f"unknown watch kind {kind!r}")
        except ListingFailed:
            raise
        except SourceError as exc:
            raise ListingFailed(str(exc), kind=exc.kind) from exc
        return [item if item.archive_key else _with_key(item) for item in items]

    def _list_any(self, url: str) -> list[ListedItem]:
        if extractor_for(url):
            return self._list_flat(url)
        # only the generic extractor accepts it: look at what the URL serves
        page = self._page(url, want_body=lambda headers: not _is_media(headers.get("Content-Type", "")))
        if _is_media(page.content_type):
            return [ListedItem(url=url, archive_key=None, extra={"content_type": page.content_type})]
        if kind := feed_kind(page.body[:4096]):
            log.debug("%s is an %s feed", url, kind)
            return parse_feed(page.body, url)
        if b"tgme_widget_message" in page.body:
            return list_channel_page(page.body.decode("utf-8", "replace"), url)
        return self._list_flat(url)

    def _list_flat(self, url: str) -> list[ListedItem]:
        result = self._isolated(_child_list, (self._child_options(), url, _ie_key(url)), f"listing {url}")
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

    def _page(self, url: str, want_body: Callable[[Any], bool] | None = None) -> Page:
        """A feed or page, at most max_page_bytes once unpacked (through yt-dlp's proxy code for SOCKS)."""
        if not self._socks:
            return self.fetcher.get(url, want_body=want_body)
        found = self._isolated(_child_fetch, (self._child_options(), url, self.limits.max_page_bytes),
                               f"fetching {url}")
        headers = Message()
        for name, value in found["headers"]:
            headers[name] = value
        return Page(found["url"], found["status"], headers, found["body"])

    # --- downloading ------------------------------------------------------

    def download(self, item: ListedItem, workdir: Path) -> DownloadedItem:
        """Download `item` into a new directory inside `workdir`, verify it, describe it.

        Raises DownloadFailed, NotAVideo or LimitExceeded (each with its kind);
        on failure nothing it wrote remains.
        """
        if not is_http(item.url):
            raise UnsupportedURL(f"cannot download {item.url!r}: not an http(s) URL")
        from monitor import ffprobe  # numpy and the decoder's limits: not in the yt-dlp process

        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        target = Path(tempfile.mkdtemp(prefix="download-", dir=workdir))
        try:
            with self.limiter.slot(item.url):
                got = self._isolated(_child_download, (self._child_options(), item.url, _ie_key(item.url), str(target)),
                                     f"the download of {item.url}", watch_dir=target)
            info = got["info"]
            path = Path(info["requested_downloads"][0]["filepath"]) if info.get("requested_downloads") else None
            if path is None or not path.is_file():
                raise _nothing_downloaded(item.url, got["seen"], self.options.get("max_filesize"))
            expected = None if info.get("requested_formats") else got["seen"]["lengths"].get(info.get("url"))
            if expected and path.stat().st_size < expected:  # one file, served whole: it must all be here
                raise DownloadFailed(f"transfer cut short: got {path.stat().st_size} of {expected} bytes from "
                                     f"{item.url}; the server closed the connection early", kind="cut-short")
            try:
                ffprobe.verify_video(path, self.limits)
            except SourceError as exc:
                said = "did not give a playable video" if isinstance(exc, NotAVideo) else "was refused"
                raise type(exc)(f"{item.url} {said}: {exc}", kind=exc.kind) from exc
            claims = self._generic_claims(info)
            return DownloadedItem(path=path, info=info, post=post_metadata(info, item, extra_claims=claims))
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    # --- revisiting -----------------------------------------------------

    def metadata(self, url: str) -> dict[str, Any]:
        """What yt-dlp extracts about `url` now, without downloading the media: its sanitised info dict.

        Bounded like a listing (a child process, a deadline); raises SourceError with the failure's kind.
        """
        if not is_http(url):
            raise UnsupportedURL(f"cannot look at {url!r}: not an http(s) URL")
        with self.limiter.slot(url):
            info = self._isolated(_child_metadata, (self._child_options(), url, _ie_key(url)), f"looking at {url}")
        if info.get("_type") == "playlist":
            entries = [entry for entry in info.get("entries") or [] if entry]
            if not entries:
                raise NotAVideo(f"{url} lists no video any more", kind="not-a-video")
            info = entries[0]
        return info

    def head(self, url: str) -> tuple[int, dict[str, str]]:
        """The status and headers a media URL answers now, without its body.

        A HEAD request, or a one-byte ranged GET where the server refuses
        HEAD; raises SourceError with the failure's kind.
        """
        with self.limiter.slot(url):
            try:
                page = self.fetcher.get(url, method="HEAD")
            except SourceError as exc:
                if exc.kind not in ("http-405", "http-501"):
                    raise
                page = self.fetcher.get(url, headers={"Range": "bytes=0-0"}, max_bytes=1)
        return page.status, dict(page.headers.items())

    def _isolated(self, func: Callable[..., dict[str, Any]], args: tuple, what: str,
                  watch_dir: Path | None = None) -> dict[str, Any]:
        """`func` run in a bounded child (see `monitor.sources.isolated`); its result, or its error raised."""
        bounds = isolated.Bounds(deadline=self.limits.item_deadline_seconds, memory_mb=self.limits.download_memory_mb,
                                 watch_dir=watch_dir, max_bytes=self.limits.max_download_bytes if watch_dir else None,
                                 what=what)
        try:
            result = isolated.run(func, args, bounds)
        except isolated.Stopped as exc:
            raise LimitExceeded(str(exc), kind=exc.kind) from exc
        for level, line in result.get("log", []):
            self.logger.log(level, "%s", line)
        if error := result.get("error"):
            raise ERROR_CLASSES.get(error["class"], SourceError)(error["message"], kind=error["kind"])
        return result["result"]

    def _child_options(self) -> dict[str, Any]:
        return {**self.options, "socket_timeout": self.socket_timeout, "max_download_bytes":
                self.limits.max_download_bytes, "max_redirects": self.limits.max_redirects}

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
            claims += jsonld_claims(self._page(page).body.decode("utf-8", "replace"))
            if media and media.startswith(("http://", "https://")) and not self._socks:
                modified = unified_timestamp(self.fetcher.get(media, method="HEAD").headers.get("Last-Modified"))
                if modified:
                    claims.append(ClaimedTime(_utc(modified), PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED))
        except SourceError as exc:
            log.info("no further time claims from %s: %s", page, exc)
        return claims


def _ie_key(url: str) -> str:
    """The extractor yt-dlp would pick for `url`, found by our index: the child need not ask all ~1,800 again."""
    ie = extractor_for(url)
    return ie.ie_key() if ie else GENERIC


def _is_media(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower().startswith(("video/", "audio/"))


def _nothing_downloaded(url: str, seen: dict[str, Any], max_filesize: int | None) -> SourceError:
    announced = seen.get("announced_bytes")
    if max_filesize and announced and announced > max_filesize:
        return LimitExceeded(f"{url} announces {format_size(announced)}, more than max_filesize / max_download_bytes "
                             f"({format_size(max_filesize)})", kind="too-large")
    return DownloadFailed(f"yt-dlp downloaded nothing from {url}")


def _with_key(item: ListedItem) -> ListedItem:
    """`item` with the archive key its URL has before download (extractor routing, offline)."""
    ie = extractor_for(item.url)
    key = archive_key(ie.ie_key(), ie.get_temp_id(item.url), item.url) if ie else archive_key(GENERIC, None, item.url)
    return ListedItem(url=item.url, archive_key=key, title=item.title, claimed=item.claimed, extra=item.extra)


# --- the child's side (runs in `monitor.sources.isolated`'s process) ----------


class _LimitReached(DownloadCancelled):
    """Raised inside yt-dlp by our hooks; yt-dlp lets DownloadCancelled through untouched."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Seen:
    """What the child saw while yt-dlp worked: errors its requests raised, retries, progress, a login wall."""

    def __init__(self, report: Callable[[dict[str, Any]], None], max_bytes: int | None) -> None:
        self.report = report
        self.max_bytes = max_bytes
        self.errors: list[BaseException] = []  # newest last
        self.responses: list[tuple[str, int, int | None, str | None]] = []  # url, status, length, encoding
        self.progress: dict[str, Any] = {}
        self.login_required = False
        self.log: list[tuple[int, str]] = []
        self._reported = 0.0

    def hook(self, status: dict[str, Any]) -> None:
        done, total = status.get("downloaded_bytes"), status.get("total_bytes") or status.get("total_bytes_estimate")
        self.progress = {"status": status.get("status"), "downloaded_bytes": done, "total_bytes": total}
        if self.max_bytes and isinstance(done, (int, float)) and done > self.max_bytes:
            raise _LimitReached(f"the download grew past {format_size(self.max_bytes)} (max_download_bytes)",
                                "too-large")
        if time.monotonic() - self._reported > 0.5 or status.get("status") != "downloading":
            self._reported = time.monotonic()
            self.report(dict(self.progress))

    def summary(self) -> dict[str, Any]:
        """What the parent checks the file against: the largest length announced, and each plain response's."""
        return {"announced_bytes": max((length or 0 for _, _, length, _ in self.responses), default=0) or None,
                "lengths": {url: length for url, status, length, encoding in self.responses[-20:]
                            if status == 200 and length and encoding in (None, "", "identity")}}


class _Logger:
    def __init__(self, seen: _Seen) -> None:
        self.seen = seen

    def debug(self, msg: str) -> None:
        self.seen.log.append((logging.DEBUG, msg))

    def info(self, msg: str) -> None:
        self.seen.log.append((logging.INFO, msg))

    def warning(self, msg: str) -> None:
        self.seen.log.append((logging.WARNING, msg))

    def error(self, msg: str) -> None:
        self.seen.log.append((logging.DEBUG, msg))  # the failure itself is reported once, by its kind


class _WatchedYoutubeDL(YoutubeDL):
    """YoutubeDL that notes every response and every error of its requests (the same in every release)."""

    def __init__(self, params: dict[str, Any], seen: _Seen) -> None:
        super().__init__(params)
        self._seen = seen

    def urlopen(self, req: Any) -> Any:
        try:
            response = super().urlopen(req)
        except Exception as exc:
            self._seen.errors.append(exc)
            raise
        length = response.headers.get("Content-Length")
        self._seen.responses.append((response.url, response.status, int(length) if str(length).isdigit() else None,
                                     response.headers.get("Content-Encoding")))
        return response


def _watch_internals(seen: _Seen) -> None:
    """Note what yt-dlp reports only as text: retries given up on, extractors asking for a login.

    Wraps two long-standing yt-dlp methods in this child process only; if a
    release renames them, nothing breaks and those failures fall back to
    the kinds "unknown" and "unavailable".
    """
    from yt_dlp.downloader.common import FileDownloader
    from yt_dlp.extractor.common import InfoExtractor

    if callable(report_retry := getattr(FileDownloader, "report_retry", None)):
        def noted_retry(self: Any, err: BaseException, *args: Any, **kwargs: Any) -> Any:
            if isinstance(err, BaseException):
                seen.errors.append(err)
            return report_retry(self, err, *args, **kwargs)

        FileDownloader.report_retry = noted_retry
    if callable(login := getattr(InfoExtractor, "raise_login_required", None)):
        def noted_login(self: Any, *args: Any, **kwargs: Any) -> Any:
            seen.login_required = True
            return login(self, *args, **kwargs)

        InfoExtractor.raise_login_required = noted_login


def _cap_redirects(count: int) -> None:
    """At most `count` redirects per request, in both of yt-dlp's HTTP back-ends (this process only)."""
    import urllib.request

    urllib.request.HTTPRedirectHandler.max_redirections = count
    with contextlib.suppress(ImportError):
        import requests.sessions

        requests.sessions.DEFAULT_REDIRECT_LIMIT = count


def _child_ydl(options: dict[str, Any], seen: _Seen, **overrides: Any) -> YoutubeDL:
    _watch_internals(seen)
    _cap_redirects(int(options.get("max_redirects", 10)))
    params = {key: value for key, value in options.items() if key not in ("max_download_bytes", "max_redirects")}
    return _WatchedYoutubeDL({**params, "quiet": True, "noprogress": True, "no_color": True,
                              "logger": _Logger(seen), "cachedir": False, "progress_hooks": [seen.hook],
                              **overrides}, seen)


def _child_result(seen: _Seen, result: Any = None, error: BaseException | None = None,
                  url: str = "", error_class: type[SourceError] = DownloadFailed,
                  options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"log": [(level, line[:1000]) for level, line in seen.log[-50:]]}
    if error is not None:
        cls, kind, message = explain(error, url, seen, options or {}, error_class)
        answer["error"] = {"class": cls.__name__, "kind": kind, "message": message}
    else:
        answer["result"] = result
    return answer


def _child_download(options: dict[str, Any], url: str, ie_key: str, target: str,
                    report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    seen = _Seen(report, options.get("max_download_bytes"))
    overrides = dict(
        paths={"home": target, "temp": target},
        outtmpl="media.%(ext)s",
        writeinfojson=True,
        noplaylist=True,
        playlist_items="1",  # a post with several videos: its first one
        overwrites=True,
    )
    try:
        with _child_ydl(options, seen, **overrides) as ydl:
            info = ydl.sanitize_info(ydl.extract_info(url, download=True, ie_key=ie_key))
        if info.get("_type") == "playlist":
            if not info.get("entries"):
                raise NotAVideo(f"{url} lists no video to download")
            info = info["entries"][0]
    except Exception as exc:  # noqa: BLE001 - classified for the parent
        return _child_result(seen, error=exc, url=url, options=options)
    return _child_result(seen, {"info": info, "seen": seen.summary()})


def _child_list(options: dict[str, Any], url: str, ie_key: str,
                report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    seen = _Seen(report, options.get("max_download_bytes"))
    try:
        with _child_ydl(options, seen, extract_flat="in_playlist", skip_download=True) as ydl:
            return _child_result(seen, ydl.sanitize_info(ydl.extract_info(url, download=False, ie_key=ie_key)))
    except Exception as exc:  # noqa: BLE001 - classified for the parent
        return _child_result(seen, error=exc, url=url, error_class=ListingFailed, options=options)


def _child_metadata(options: dict[str, Any], url: str, ie_key: str,
                    report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A post's info dict, extracted without downloading (a revisit)."""
    seen = _Seen(report, options.get("max_download_bytes"))
    try:
        with _child_ydl(options, seen, noplaylist=True, playlist_items="1", skip_download=True) as ydl:
            return _child_result(seen, ydl.sanitize_info(ydl.extract_info(url, download=False, ie_key=ie_key)))
    except Exception as exc:  # noqa: BLE001 - classified for the parent
        return _child_result(seen, error=exc, url=url, options=options)


def _child_fetch(options: dict[str, Any], url: str, max_bytes: int,
                 report: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """A page through yt-dlp's HTTP code (for SOCKS proxies), read in pieces up to `max_bytes`."""
    from yt_dlp.networking import Request

    seen = _Seen(report, None)
    try:
        with _child_ydl(options, seen) as ydl, ydl.urlopen(Request(url)) as response:
            parts, size = [], 0
            while chunk := response.read(64 * 1024):
                size += len(chunk)
                if size > max_bytes:
                    raise _LimitReached(f"{url} is larger than {format_size(max_bytes)} (max_page_bytes)", "too-large")
                parts.append(chunk)
            return _child_result(seen, {"url": response.url, "status": response.status, "body": b"".join(parts),
                                        "headers": list(response.headers.items())})
    except Exception as exc:  # noqa: BLE001 - classified for the parent
        return _child_result(seen, error=exc, url=url, error_class=ListingFailed, options=options)


# --- classification ---------------------------------------------------------


def explain(exc: BaseException, url: str, seen: _Seen | None = None, options: Mapping[str, Any] | None = None,
            error_class: type[SourceError] = DownloadFailed) -> tuple[type[SourceError], str, str]:
    """(SourceError class, kind, one-line message) for a failure of yt-dlp on `url`.

    The exception's own chain is read first; when it says nothing precise
    (yt-dlp gave up after retries and kept only their text, or an extractor
    failed to parse a page it never received), the errors the child's
    requests raised and its byte counts decide.  An extractor that gives up
    in its own words ("unavailable": TikTok's "Unable to extract secondary
    user ID" after its page request failed) is believed only when none of
    its requests failed on the network: offline, the network is the reason.
    """
    options = options or {}
    timeout = options.get("socket_timeout")
    found = _classify(list(linked(exc)), url, timeout)
    if (found is None or found[1] in ("extractor-error", "unavailable")) and seen is not None:
        noted = [n for error in reversed(seen.errors) if (n := _classify(list(linked(error)), url, timeout))]
        if network := next((n for n in noted if n[1] in NETWORK_KINDS), None):
            found = network  # the extractor gave up because its request never got an answer
        elif seen.login_required:
            found = (DownloadFailed, "private", f"{url} needs a login (private, members only or age-gated): "
                                                f"{_message(exc)}")
        elif found is None or found[1] == "extractor-error":
            if other := next((n for n in noted if n[1] not in ("extractor-error", "unavailable")), None):
                found = other
            elif (progress := seen.progress) and progress.get("status") != "finished" \
                    and isinstance(progress.get("total_bytes"), int) \
                    and (progress.get("downloaded_bytes") or 0) < progress["total_bytes"]:
                found = (DownloadFailed, "cut-short", f"transfer cut short: got {progress.get('downloaded_bytes')} "
                                                      f"of {progress['total_bytes']} bytes from {url}; "
                                                      "the server closed the connection early")
    if found is None:
        found = (error_class, "unknown", f"yt-dlp failed on {url}: {_message(exc)}")
    cls, kind, message = found
    if cls is DownloadFailed and error_class is not DownloadFailed:
        cls = error_class
    return cls, kind, message


def _classify(chain: list[BaseException], url: str,
              socket_timeout: float | None) -> tuple[type[SourceError], str, str] | None:
    def first(*types: type) -> Any:
        return next((e for e in chain if isinstance(e, types)), None)

    if limit := first(_LimitReached):
        return LimitExceeded, limit.kind, f"{url}: {limit.msg}"
    if first(MemoryError):
        return LimitExceeded, "too-large", (f"{url} needed more memory than download_memory_mb allows "
                                            "(a page or file unpacked in memory?)")
    if error := first(HTTPError):
        if error.redirect_loop or 300 <= error.status < 400:
            return DownloadFailed, "redirect-loop", f"too many redirects from {url}; a redirect loop?"
        where = error.response.url if getattr(error, "response", None) is not None and error.response.url else url
        return DownloadFailed, http_kind(error.status), f"HTTP {error.status} {error.reason or ''}".rstrip() + \
            f" from {where}"
    if error := first(ContentTooShortError):
        return DownloadFailed, "cut-short", (f"transfer cut short: got {error.downloaded} of {error.expected} bytes "
                                             f"from {url}; the server closed the connection early")
    if error := first(IncompleteRead):
        total = f" of {error.partial + error.expected}" if isinstance(error.expected, int) else ""
        return DownloadFailed, "cut-short", (f"transfer cut short: got {error.partial}{total} bytes from {url}; "
                                             "the server closed the connection early")
    if error := first(ProxyError):
        return DownloadFailed, "proxy", f"the proxy failed for {url}: {_message(error)}"
    if failure := network_failure(chain[0], url, socket_timeout):
        return DownloadFailed, failure[0], failure[1]
    if error := first(UnavailableVideoError):  # yt-dlp's wrapper of an OSError while writing the file
        cause = next((e for e in linked(error) if isinstance(e, OSError)), error)
        return DownloadFailed, "storage", f"could not write the download of {url} here: {one_line(str(cause))}"
    if error := first(GeoRestrictedError):
        where = f" (available in: {', '.join(error.countries)})" if error.countries else ""
        return DownloadFailed, "geo-blocked", f"{url} is not available from this location{where}: {error.orig_msg}"
    if first(UnsupportedError):
        return NotAVideo, "not-a-video", (f"no video found at {url}: yt-dlp recognises no media, player or feed "
                                          "in the page")
    if isinstance(error := first(SourceError), SourceError):
        return type(error), error.kind, str(error)
    if error := first(ExtractorError):
        if error.expected:
            return DownloadFailed, "unavailable", f"{url}: {one_line(error.orig_msg)}"
        return DownloadFailed, "extractor-error", (f"yt-dlp could not read {url}: {one_line(error.orig_msg)} "
                                                   "(a newer yt-dlp may: pip install -U yt-dlp)")
    return None


def _message(exc: BaseException) -> str:
    text = one_line(str(exc))
    return re.sub(r"^(ERROR: )?(\[[\w:]+\] )?", "", text) or type(exc).__name__


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)

