"""Revisits: look at stored posts again, on a schedule that thins out with age, and record what we saw.

Why: footage is deleted, made private or edited within hours of posting, and
"it was up at 10:00 and gone by 11:00" is itself evidence.  Every revisit
adds an observation (`storage.records.NewObservation`): our own sighting, with
its time, method and tool, never the platform's claim, and never overwriting
the post or an earlier observation.

How, without downloading the media again:
- a page or platform post: yt-dlp's metadata extraction only
  (`extract_info(download=False)`): title, description, counts, and the
  platform's description of the file (duration, format id, size); for a
  generic page, the video it points to is checked with a HEAD request too;
- a direct media URL: a HEAD request (a one-byte GET where HEAD is refused):
  Content-Length, ETag and Last-Modified say whether the file changed.
When the platform describes a different file than before, the observation says
so (`media_changed`) and nothing is downloaded: re-downloading and comparing
is a follow-up for a person (or `find-earliest URL --ingest`).

Posts stored from local files (file:// URLs) are never revisited.

The schedule (`[revisit] schedule`): steps "EVERY until AGE", then an optional
last "EVERY" with no end.  A post is due EVERY after its last observation
(or after it was first seen), where EVERY is the step its age (time since
first seen) had at that observation; past the last "until", it is not
revisited any more.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import re
import socket
import threading
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.config import ConfigError
from monitor.failures import HTTP_KIND
from monitor.workspace import Workspace
from storage import NotFound
from storage.records import (
    METHOD_HTTP_HEAD,
    METHOD_YTDLP_METADATA,
    STATUS_GEO_BLOCKED,
    STATUS_PRIVATE,
    STATUS_REMOVED,
    STATUS_UNREACHABLE,
    STATUS_UP,
    SOURCE_HTTP_LAST_MODIFIED,
    MediaRecord,
    NewObservation,
    ObservationRecord,
    PostRecord,
    RevisitState,
)

log = logging.getLogger("provenance.revisit")

REVISITABLE_PREFIXES = ("http://", "https://")
DURATION_TOLERANCE = 1.0  # seconds: durations further apart mean the platform describes another file
COUNT_FIELDS = ("view_count", "like_count", "repost_count", "comment_count")
TEXT_FIELDS = ("title", "description")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_STEP = re.compile(r"^\s*(?P<every>\S+)(?:\s+until\s+(?P<until>\S+))?\s*$", re.IGNORECASE)


class NotRevisitable(ValueError):
    """A post that cannot be looked at again (stored from a local file)."""


# --- schedule ------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleStep:
    every: timedelta
    until: timedelta | None  # the post's age (since first seen) where this step ends; None: never


def _duration(text: str, entry: str) -> timedelta:
    m = _DURATION.match(text)
    if not m:
        raise ConfigError(f"[revisit] schedule: {text!r} in {entry!r} is not a duration; write e.g. 30m, 1h, 1d, 7d")
    return timedelta(seconds=float(m[1]) * _UNITS[m[2].lower()])


def parse_schedule(entries: list[str]) -> list[ScheduleStep]:
    """["1h until 1d", "1d until 30d", "7d"] → steps; raises ConfigError with what to write instead."""
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError('[revisit] schedule must be a list of strings such as ["1h until 1d", "7d"]')
    steps = []
    for n, entry in enumerate(entries):
        m = _STEP.match(entry)
        if not m:
            raise ConfigError(f"[revisit] schedule: {entry!r} is not 'EVERY until AGE' or 'EVERY' (e.g. '1h until 1d')")
        every = _duration(m["every"], entry)
        until = _duration(m["until"], entry) if m["until"] else None
        if every <= timedelta(0):
            raise ConfigError(f"[revisit] schedule: {entry!r} must revisit after more than 0 seconds")
        if until is None and n != len(entries) - 1:
            raise ConfigError(f"[revisit] schedule: only the last step may go on for ever; give {entry!r} an 'until AGE'")
        if until is not None and steps and until <= steps[-1].until:
            raise ConfigError(f"[revisit] schedule: the ages must grow; {entry!r} ends before the step before it")
        steps.append(ScheduleStep(every, until))
    return steps


def next_revisit(state: RevisitState, schedule: list[ScheduleStep]) -> datetime | None:
    """When a post is next due (see the module doc), or None when the schedule is over for it."""
    reference = state.last_observed_at or state.first_seen_at
    age = reference - state.first_seen_at
    step = next((s for s in schedule if s.until is None or age < s.until), None)
    return reference + step.every if step else None


def due_post_ids(ws: Workspace, now: datetime) -> list[int]:
    """Posts due for a revisit at `now`, the longest overdue first."""
    schedule = parse_schedule(ws.config.section("revisit")["schedule"])
    due = [(at, s.post_id) for s in ws.repository.revisit_states(REVISITABLE_PREFIXES)
           if (at := next_revisit(s, schedule)) is not None and at <= now]
    return [post_id for _, post_id in sorted(due)]


# --- what went wrong, in stable words ------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A failed look at a post: the status it implies and a stable kind for machines."""

    status: str  # STATUS_*
    kind: str  # "http-404", "removed", "private", "geo-blocked", "no-video", "dns", "timeout", "refused"...
    message: str
    http_status: int | None = None


# Platform messages (yt-dlp ExtractorError text, lower case) → status; checked in this order.
_MESSAGES = (
    (STATUS_GEO_BLOCKED, "geo-blocked", ("geo restrict", "geo-restrict", "from your location", "in your country",
                                         "not available in your region")),
    (STATUS_PRIVATE, "private", ("private video", "video is private", "is private", "only available for registered",
                                 "login required", "log in for access", "sign in", "requires authentication",
                                 "members-only", "only available to")),
    (STATUS_REMOVED, "removed", ("video unavailable", "has been removed", "no longer available", "been deleted",
                                 "does not exist", "account has been terminated", "suspended", "not found",
                                 "video not available", "isn't available", "is not available")),
)


def _chain(exc: BaseException | None):
    """An exception and what it wraps: yt-dlp keeps causes in `exc_info` and `cause` as well."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc_info = getattr(exc, "exc_info", None)
        wrapped = getattr(exc, "cause", None) or (exc_info[1] if exc_info else None)
        exc = wrapped if isinstance(wrapped, BaseException) else (exc.__cause__ or exc.__context__)


def _http_failure(status: int, message: str) -> Failure:
    if status in (404, 410):
        return Failure(STATUS_REMOVED, f"http-{status}", message, status)
    if status == 451:  # unavailable for legal reasons: withheld where we asked from
        return Failure(STATUS_GEO_BLOCKED, "http-451", message, status)
    if status == 401:
        return Failure(STATUS_PRIVATE, "http-401", message, status)
    # 403 is as often a bot wall as a private file, 429 and 5xx are the server's trouble: we cannot tell
    return Failure(STATUS_UNREACHABLE, "http-5xx" if status >= 500 else f"http-{status}", message, status)


_UNREACHABLE_KINDS = ("dns", "refused", "timeout", "too-slow", "network", "tls", "proxy", "cut-short")


def _from_kind(kind: str, message: str) -> Failure | None:
    """A failure our sources already classified (`monitor.failures` kinds, found in the download child)."""
    if m := HTTP_KIND.fullmatch(kind):
        return _http_failure(int(m[1]), message)
    if kind in ("geo-blocked", "private"):
        return Failure(STATUS_GEO_BLOCKED if kind == "geo-blocked" else STATUS_PRIVATE, kind, message)
    if kind == "not-a-video":
        return Failure(STATUS_REMOVED, "no-video", message)
    if kind == "unavailable":  # the platform's own words say which
        text = message.lower()
        for status, phrase_kind, phrases in _MESSAGES:
            if any(p in text for p in phrases):
                return Failure(status, phrase_kind, message)
        return Failure(STATUS_REMOVED, "removed", message)
    if kind in _UNREACHABLE_KINDS:
        return Failure(STATUS_UNREACHABLE, kind, message)
    return None


def classify_failure(exc: BaseException) -> Failure:
    """What a failed look at a post means: from the failure kind our sources found, else from yt-dlp's
    exception types, HTTP status and message.

    Order: geo restriction (yt-dlp's own exception type), an HTTP status,
    a page with no video, the platform's words, then network failures, which
    say nothing about the post (`unreachable`).
    """
    from yt_dlp.networking.exceptions import HTTPError, SSLError, TransportError
    from yt_dlp.utils import ExtractorError, GeoRestrictedError, UnsupportedError

    chain = list(_chain(exc))
    message = " ".join(str(exc).split())[:500] or type(exc).__name__
    if (kind := getattr(exc, "kind", None)) and (known := _from_kind(kind, message)):
        return known
    for cause in chain:
        if isinstance(cause, GeoRestrictedError):
            return Failure(STATUS_GEO_BLOCKED, "geo-blocked", message)
    for cause in chain:
        if isinstance(cause, HTTPError):
            return _http_failure(cause.status, message)
    for cause in chain:
        if isinstance(cause, UnsupportedError):
            return Failure(STATUS_REMOVED, "no-video", message)
    for cause in chain:
        if isinstance(cause, ExtractorError) and not isinstance(cause, UnsupportedError):
            text = str(cause).lower()
            for status, kind, phrases in _MESSAGES:
                if any(p in text for p in phrases):
                    return Failure(status, kind, message)
    for cause in chain:
        if isinstance(cause, socket.gaierror) or re.search(
                r"name or service not known|temporary failure in name resolution|nodename nor servname|getaddrinfo",
                str(cause), re.I):
            return Failure(STATUS_UNREACHABLE, "dns", message)
        if isinstance(cause, (TimeoutError, socket.timeout)) or "timed out" in str(cause).lower():
            return Failure(STATUS_UNREACHABLE, "timeout", message)
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED \
                or "connection refused" in str(cause).lower():
            return Failure(STATUS_UNREACHABLE, "refused", message)
        if isinstance(cause, SSLError):
            return Failure(STATUS_UNREACHABLE, "tls", message)
    if any(isinstance(cause, (TransportError, OSError)) for cause in chain):
        return Failure(STATUS_UNREACHABLE, "network", message)
    return Failure(STATUS_UNREACHABLE, "error", message)


# --- one look at one post ------------------------------------------------------


@dataclass
class Sighting:
    """What one look at a post saw, before it is compared with earlier sightings and stored."""

    status: str
    method: str
    failure: Failure | None = None
    texts: dict[str, str | None] = field(default_factory=dict)  # title, description (None: not seen)
    counts: dict[str, int | None] = field(default_factory=dict)
    media: dict[str, Any] = field(default_factory=dict)  # the platform's or server's description of the file
    details: dict[str, Any] = field(default_factory=dict)


def _tool() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from yt_dlp.version import __version__ as ytdlp_version

    try:
        ours = version("provenance")
    except PackageNotFoundError:
        ours = "unknown"
    return f"provenance {ours}, yt-dlp {ytdlp_version}"


def _http_time(value: str | None) -> str | None:
    try:
        at = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at and at.tzinfo else None


def media_from_headers(status: int, headers: dict[str, str]) -> dict[str, Any]:
    """The file a HEAD (or one-byte GET) answer describes: size, ETag, Last-Modified, type."""
    lowered = {k.lower(): v for k, v in headers.items()}
    length = lowered.get("content-length")
    if status == 206 and (m := re.search(r"/(\d+)\s*$", lowered.get("content-range", ""))):
        length = m[1]
    return {k: v for k, v in {
        "content_length": int(length) if length and length.isdigit() else None,
        "etag": lowered.get("etag"),
        "last_modified": _http_time(lowered.get("last-modified")),
        "content_type": lowered.get("content-type"),
    }.items() if v is not None}


def _info_media(info: dict[str, Any]) -> dict[str, Any]:
    """The file a yt-dlp info dict describes, in fields comparable between two extractions."""
    generic = info.get("extractor_key") == "Generic"
    values = {
        "duration": info.get("duration"),
        "format_id": info.get("format_id"),
        "filesize": info.get("filesize") or info.get("filesize_approx"),
        # platforms sign their media URLs afresh on every visit; a plain page's video URL is stable
        "media_url": info.get("url") if generic else None,
    }
    return {k: v for k, v in values.items() if v is not None}


_KEPT_INFO_LISTS = ("tags", "categories")


def _trimmed_info(info: dict[str, Any]) -> dict[str, Any]:
    """An info dict without what is bulky and volatile (format lists, signed URLs, headers), as kept raw."""
    kept = {k: v for k, v in info.items()
            if (v is None or isinstance(v, (bool, int, float)) or (isinstance(v, str) and len(v) <= 20000))
            and not k.startswith("_")}
    kept.update({k: info[k] for k in _KEPT_INFO_LISTS if isinstance(info.get(k), list)})
    kept["formats"] = [{k: f.get(k) for k in ("format_id", "ext", "width", "height", "filesize", "filesize_approx")}
                       for f in info.get("formats") or []][:50]
    return kept


def _is_direct(post: PostRecord) -> bool:
    from monitor.sources.platforms import is_direct_media

    info = (post.raw_metadata or {}).get("yt_dlp")
    if isinstance(info, dict) and info:
        return is_direct_media(info)
    from yt_dlp.utils import MEDIA_EXTENSIONS

    extension = urllib.parse.urlsplit(post.url).path.rsplit(".", 1)[-1].lower()
    return extension in (*MEDIA_EXTENSIONS.video, *MEDIA_EXTENSIONS.audio)


def look(source, post: PostRecord) -> Sighting:
    """One look at a post now, with the method that suits its URL (see the module doc)."""
    from monitor.sources import SourceError

    if _is_direct(post):
        try:
            status, headers = source.head(post.url)
        except SourceError as exc:
            failure = classify_failure(exc)
            return Sighting(failure.status, METHOD_HTTP_HEAD, failure)
        return Sighting(STATUS_UP, METHOD_HTTP_HEAD, media=media_from_headers(status, headers),
                        details={"http_status": status, "headers": headers})
    try:
        info = source.metadata(post.url)
    except SourceError as exc:
        failure = classify_failure(exc)
        return Sighting(failure.status, METHOD_YTDLP_METADATA, failure)
    sighting = Sighting(STATUS_UP, METHOD_YTDLP_METADATA,
                        texts={k: _text(info.get(k)) for k in TEXT_FIELDS},
                        counts={k: _count(info.get(k)) for k in COUNT_FIELDS},
                        media=_info_media(info), details={"info": _trimmed_info(info)})
    media_url = info.get("url")
    if info.get("extractor_key") == "Generic" and isinstance(media_url, str) and media_url.startswith(
            REVISITABLE_PREFIXES) and media_url != post.url:
        # a plain page may stay up while the video it pointed to is gone
        try:
            status, headers = source.head(media_url)
        except SourceError as exc:
            failure = classify_failure(exc)
            if failure.status != STATUS_UNREACHABLE:
                sighting.status = failure.status
                sighting.failure = replace(failure, message=f"the page is up but its video {media_url} is not: "
                                                            f"{failure.message}")
            sighting.details["media_url_error"] = failure.message
        else:
            sighting.media.update(media_from_headers(status, headers))
            sighting.details["media_url_headers"] = headers
    return sighting


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _count(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


# --- comparing with what was seen before ---------------------------------------


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _first_sighting(post: PostRecord, media: MediaRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the post looked like when it was stored: (texts, file description), as a revisit would see them.

    Only what the same kind of look can see again: yt-dlp's own title (not
    a feed's), the downloaded file's size, the server's Last-Modified claim.
    """
    info = (post.raw_metadata or {}).get("yt_dlp") or {}
    texts = {k: _text(info.get(k)) for k in TEXT_FIELDS} if info else {}
    file = _info_media(info) if info else {}
    file["content_length"] = media.size_bytes
    modified = [c["at"] for c in (post.raw_metadata or {}).get("claims", [])
                if isinstance(c, dict) and c.get("source") == SOURCE_HTTP_LAST_MODIFIED]
    if modified:
        file["last_modified"] = _iso(datetime.fromisoformat(modified[0]).astimezone(UTC))
    return texts, file


def _media_differs(key: str, old: Any, new: Any) -> bool:
    if key == "duration":
        return abs(float(old) - float(new)) > DURATION_TOLERANCE
    return old != new


def compare(sighting: Sighting, post: PostRecord, media: MediaRecord,
            earlier: list[ObservationRecord]) -> tuple[dict[str, Any], bool]:
    """(changes, media_changed) of a sighting against the latest earlier sighting of each field.

    A text change holds {"old", "new", "old_seen_at"}: the time the old value
    was last seen, so "changed between A and B" needs nothing else.
    """
    if sighting.status != STATUS_UP:
        return {}, False
    first_texts, first_file = _first_sighting(post, media)
    changes: dict[str, Any] = {}
    for key in TEXT_FIELDS:
        new = sighting.texts.get(key)
        if new is None:
            continue
        seen = [(o.observed_at, getattr(o, key)) for o in earlier if getattr(o, key) is not None]
        old_at, old = seen[-1] if seen else (post.first_seen_at, first_texts.get(key))
        if old is not None and old != new:
            changes[key] = {"old": old, "new": new, "old_seen_at": _iso(old_at)}
    media_changes = {}
    for key, new in sighting.media.items():
        seen = [(o.observed_at, o.media[key]) for o in earlier if o.status == STATUS_UP and key in o.media]
        old_at, old = seen[-1] if seen else (post.first_seen_at, first_file.get(key))
        if old is not None and _media_differs(key, old, new):
            media_changes[key] = {"old": old, "new": new, "old_seen_at": _iso(old_at)}
    if media_changes:
        changes["media"] = media_changes
    return changes, bool(media_changes)


# --- the jobs ------------------------------------------------------------------


def default_source(ws: Workspace):
    from monitor.sources import YtDlpSource

    return YtDlpSource(ws.config.ytdlp)


def revisit_post(ws: Workspace, post_id: int, source=None) -> ObservationRecord:
    """Look at one stored post now and record the observation.

    Raises NotFound for an unknown post and NotRevisitable for one stored
    from a local file.  A post that cannot be reached is an observation
    (`unreachable`), not an error.
    """
    post = ws.repository.get_post(post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}")
    if not post.url.startswith(REVISITABLE_PREFIXES):
        raise NotRevisitable(f"post {post_id} was stored from a local file ({post.url}): there is nothing to revisit")
    media = ws.repository.get_media(post.media_id)
    source = source or default_source(ws)
    sighting = look(source, post)
    observed_at = datetime.now(UTC)
    earlier = ws.repository.observations_for_posts([post_id]).get(post_id, [])
    changes, media_changed = compare(sighting, post, media, earlier)
    failure = sighting.failure
    observation = ws.repository.add_observation(NewObservation(
        post_id=post_id, observed_at=observed_at, status=sighting.status, method=sighting.method, tool=_tool(),
        http_status=failure.http_status if failure else sighting.details.get("http_status"),
        error_kind=failure.kind if failure else None, error=failure.message if failure else None,
        title=sighting.texts.get("title"), description=sighting.texts.get("description"),
        **{k: sighting.counts.get(k) for k in COUNT_FIELDS},
        media=sighting.media, changes=changes, media_changed=media_changed, details=sighting.details))
    log.info("revisited post=%s status=%s method=%r changes=%s", post_id, observation.status, observation.method,
             ",".join(changes) or "-")
    return observation


@dataclass
class RevisitSummary:
    observations: list[ObservationRecord] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)  # {post_id, reason}
    interrupted: bool = False

    def statuses(self) -> dict[str, int]:
        return dict(Counter(o.status for o in self.observations))


def revisit_posts(ws: Workspace, post_ids: list[int], source=None,
                  stop: threading.Event | None = None) -> RevisitSummary:
    """Revisit these posts one after another; a post stored from a file, or gone from the store, is skipped."""
    source = source or default_source(ws)
    summary = RevisitSummary()
    for post_id in post_ids:
        if stop is not None and stop.is_set():
            summary.interrupted = True
            break
        try:
            summary.observations.append(revisit_post(ws, post_id, source))
        except (NotFound, NotRevisitable) as exc:
            summary.skipped.append({"post_id": post_id, "reason": str(exc)})
    return summary


def revisit_all(ws: Workspace, source=None, stop: threading.Event | None = None) -> RevisitSummary:
    """Revisit every post that has a web URL now, whatever the schedule says."""
    ids = [s.post_id for s in ws.repository.revisit_states(REVISITABLE_PREFIXES)]
    return revisit_posts(ws, ids, source, stop)


def revisit_due(ws: Workspace, now: datetime | None = None, source=None,
                stop: threading.Event | None = None) -> RevisitSummary:
    """Revisit the posts the schedule says are due at `now` (default: the current time), longest overdue first.

    Idempotent: a post just revisited is not due again until its next step.
    `[revisit] max_per_run` caps how many one run does (0: no cap).
    """
    ids = due_post_ids(ws, now or datetime.now(UTC))
    cap = int(ws.config.section("revisit")["max_per_run"])
    return revisit_posts(ws, ids[:cap] if cap else ids, source, stop)
