"""Polling a watch: list it, skip what is stored, download and ingest the rest, record it all.

One plain function per job (`poll_watch`, `poll_all`), called by `provenance
run-once`, by the daemon's scheduler and by tests alike.  The steps read like
the data flow: list → de-duplicate on the archive key → download into a
per-item temporary directory → analyse (metadata, fingerprint) → ingest
(match, store).  One item failing is recorded against that item, with a retry
time that backs off exponentially, and never stops the poll; only a listing
that fails fails the whole poll.  Files reach the media store only through
`ingest_analysed`, after they were verified and fingerprinted, so a failed or
interrupted item leaves nothing partial behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.config import Config
from monitor.analysis import InputError, analyse_file
from monitor.failures import kind_of
from monitor.jobs.ingest import ingest_analysed, ingest_file, stored_fingerprinted_media
from monitor.workspace import Workspace
from monitor.sources import DownloadedItem, ListedItem, Source, SourceError, YtDlpSource
from storage import NotFound, StorageError
from storage.records import WatchItemRecord, WatchRecord

log = logging.getLogger("provenance.poll")

ITEM_ERRORS = (SourceError, InputError, StorageError, OSError)
STAGES = ("list", "download", "analyse", "ingest")  # analyse = metadata + fingerprint; ingest = match + store
WORK_SUBDIR = "work"


def kv(**fields: Any) -> str:
    """`key=value` pairs for structured log lines; values with spaces are JSON-quoted."""
    parts = []
    for key, value in fields.items():
        text = str(value)
        plain = text and not any(c.isspace() or c in '"=' for c in text)
        parts.append(f"{key}={text if plain else json.dumps(text)}")
    return " ".join(parts)


@dataclass
class PollProgress:
    """What a progress display needs after each step of a poll."""

    watch: WatchRecord
    done: int  # items handled so far (stored, failed or skipped as already stored)
    total: int  # items that need work this poll; 0 until the listing is read
    url: str | None = None  # the item just handled


@dataclass
class PollSummary:
    """The outcome of one poll, as stored in its poll record plus timings."""

    watch: WatchRecord
    poll_id: int
    status: str  # "ok", "partial", "failed"
    items_seen: int = 0
    items_new: int = 0  # stored by this poll
    items_failed: int = 0
    items_waiting: int = 0  # failed before and not yet due for retry
    errors: list[dict[str, Any]] = field(default_factory=list)  # {archive_key, url, kind, error}
    listing_error: str | None = None
    listing_kind: str | None = None  # monitor.failures kind of listing_error
    interrupted: bool = False  # stopped between items (daemon shutdown)
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    @property
    def ran(self) -> bool:
        """Whether the watch could be listed at all."""
        return self.listing_error is None


def default_source(config: Config) -> YtDlpSource:
    return YtDlpSource(config.ytdlp, limits=config.limits)


def retry_delay(poll_settings: Mapping[str, Any], failures: int) -> timedelta:
    """Wait retry_base_seconds after the first failure, doubling per failure up to retry_max_seconds."""
    base, cap = float(poll_settings["retry_base_seconds"]), float(poll_settings["retry_max_seconds"])
    return timedelta(seconds=min(base * 2 ** max(failures - 1, 0), cap))


def poll_watch(ws: Workspace, watch: WatchRecord, source: Source | None = None, now: datetime | None = None,
               progress: Callable[[PollProgress], None] | None = None,
               stop: threading.Event | None = None) -> PollSummary:
    """Poll one watch now and record the poll; see the module doc for the steps.

    `now` is when retry decisions are made (default: the current time).  When
    `stop` is set the poll ends after the item in hand.
    """
    source = source or default_source(ws.config)
    now = now or datetime.now(UTC)
    repo = ws.repository
    poll = repo.start_poll(watch.id)
    summary = PollSummary(watch=watch, poll_id=poll.id, status="failed")
    log.info("poll started %s", kv(watch=watch.id, poll=poll.id, url=watch.url))
    try:
        _poll_items(ws, watch, source, now, summary, progress, stop)
    except Exception as exc:  # a bug or the database going away: the poll record must still end
        summary.listing_error = summary.listing_error or f"poll stopped by an unexpected error: {exc}"
        raise
    finally:
        summary.status = _status(summary)
        errors = summary.errors if summary.ran else [{"archive_key": None, "url": watch.url,
                                                        "kind": summary.listing_kind or "unknown",
                                                        "error": summary.listing_error}]
        repo.finish_poll(poll.id, summary.items_seen, summary.items_new, summary.items_failed, errors,
                         summary.status)
        try:
            repo.mark_watch_polled(watch.id, datetime.now(UTC))
        except NotFound:
            log.info("watch removed while it was polled %s", kv(watch=watch.id))
        log.info("poll finished %s", kv(watch=watch.id, poll=poll.id, status=summary.status,
                                        seen=summary.items_seen, new=summary.items_new,
                                        failed=summary.items_failed, interrupted=summary.interrupted))
    return summary


def _status(summary: PollSummary) -> str:
    if not summary.ran:
        return "failed"
    return "partial" if summary.items_failed else "ok"


def _poll_items(ws: Workspace, watch: WatchRecord, source: Source, now: datetime, summary: PollSummary,
                progress: Callable[[PollProgress], None] | None, stop: threading.Event | None) -> None:
    started = time.perf_counter()
    try:
        listed = source.list_items(watch.url, watch.kind)
    except (SourceError, OSError) as exc:
        summary.listing_error = str(exc) or type(exc).__name__
        summary.listing_kind = kind_of(exc)
        log.warning("listing failed %s", kv(watch=watch.id, url=watch.url, error=summary.listing_error))
        return
    finally:
        summary.seconds["list"] += time.perf_counter() - started
    summary.items_seen = len(listed)
    todo = [item for item in listed if _needs_work(ws, watch, item, now, summary)]
    cap = int(ws.config.section("poll")["max_items_per_poll"])
    if cap and len(todo) > cap:
        log.info("poll capped %s", kv(watch=watch.id, items=len(todo), max_items_per_poll=cap))
        todo = todo[:cap]
    if progress:
        progress(PollProgress(watch, 0, len(todo)))
    workroot = ws.config.data_dir / WORK_SUBDIR
    workroot.mkdir(parents=True, exist_ok=True)
    for done, item in enumerate(todo, 1):
        if stop is not None and stop.is_set():
            summary.interrupted = True
            log.info("poll interrupted %s", kv(watch=watch.id, items_left=len(todo) - done + 1))
            break
        _poll_item(ws, watch, source, item, now, summary, workroot)
        if progress:
            progress(PollProgress(watch, done, len(todo), item.url))


def _needs_work(ws: Workspace, watch: WatchRecord, item: ListedItem, now: datetime, summary: PollSummary) -> bool:
    """False for items stored already and failed items not due for retry yet."""
    state = ws.repository.get_watch_item(watch.id, state_key(item))
    if state is not None and state.status == "stored":
        return False
    if item.archive_key and ws.repository.get_post_by_archive_key(item.archive_key) is not None:
        return False  # stored through another watch or `find-earliest --ingest`
    if state is not None and (state.next_attempt_at is None or state.next_attempt_at > now):
        summary.items_waiting += 1
        log.debug("not due for retry %s", kv(watch=watch.id, archive_key=state.archive_key,
                                              next_attempt_at=state.next_attempt_at))
        return False
    return True


def _poll_item(ws: Workspace, watch: WatchRecord, source: Source, item: ListedItem, now: datetime,
               summary: PollSummary, workroot: Path) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="item-", dir=workroot))
    try:
        started = time.perf_counter()
        try:
            got: DownloadedItem = source.download(item, workdir)
        finally:
            summary.seconds["download"] += time.perf_counter() - started
        key = got.post.archive_key
        if item.archive_key is None and key and (known := ws.repository.get_post_by_archive_key(key)):
            # the key was known only after download: check it again before storing
            ws.repository.record_item_stored(watch.id, state_key(item), item.url, known.id)
            log.info("already stored %s", kv(watch=watch.id, archive_key=key, url=item.url, post=known.id))
            return
        post = got.post.to_new_post(0, watch_id=watch.id)
        started = time.perf_counter()
        try:
            # the very same bytes stored and fingerprinted already: ingest_file only records the new post
            analysed = None if stored_fingerprinted_media(ws, got.path) \
                else analyse_file(got.path, ws.settings, exif=ws.exif, limits=ws.config.limits)
        finally:
            summary.seconds["analyse"] += time.perf_counter() - started
        started = time.perf_counter()
        try:
            result = ingest_file(ws, got.path, post) if analysed is None else ingest_analysed(ws, analysed, post)
        finally:
            summary.seconds["ingest"] += time.perf_counter() - started
    except ITEM_ERRORS as exc:
        _record_failure(ws, watch, item, exc, now, summary)
        return
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    ws.repository.record_item_stored(watch.id, state_key(item), item.url, result.post.id)
    summary.items_new += 1
    log.info("item stored %s", kv(watch=watch.id, archive_key=key, url=item.url, media=result.media.id,
                                  new_media=result.new_media, post=result.post.id, matches=len(result.matches)))


def state_key(item: ListedItem) -> str:
    """The key of an item's poll state: its archive key, or its URL when that is known only after download."""
    return item.archive_key or f"url {item.url}"


def _record_failure(ws: Workspace, watch: WatchRecord, item: ListedItem, exc: Exception,
                    now: datetime, summary: PollSummary) -> WatchItemRecord:
    key = state_key(item)
    message = " ".join(str(exc).split()) or type(exc).__name__
    state = ws.repository.get_watch_item(watch.id, key)
    failures = (state.attempts + 1) if state is not None and state.status == "failed" else 1
    retry_at = now + retry_delay(ws.config.section("poll"), failures)
    summary.items_failed += 1
    kind = "storage" if isinstance(exc, StorageError) else kind_of(exc)
    summary.errors.append({"archive_key": key, "url": item.url, "kind": kind, "error": message})
    log.warning("item failed %s", kv(watch=watch.id, archive_key=key, url=item.url, kind=kind, error=message,
                                     attempt=failures, retry_at=retry_at.isoformat(timespec="seconds")))
    return ws.repository.record_item_failed(watch.id, key, item.url, message, retry_at)


def poll_all(ws: Workspace, watch_ids: list[int] | None = None, source: Source | None = None,
             now: datetime | None = None, progress: Callable[[PollProgress], None] | None = None,
             stop: threading.Event | None = None) -> list[PollSummary]:
    """Poll the given watches (paused ones too) or, by default, every enabled watch, one after another."""
    if watch_ids:
        watches = []
        for watch_id in watch_ids:
            watch = ws.repository.get_watch(watch_id)
            if watch is None:
                raise NotFound(f"no watch with id {watch_id}; see `provenance watch list`")
            watches.append(watch)
    else:
        watches = ws.repository.list_watches(enabled_only=True)
    source = source or default_source(ws.config)
    summaries = []
    for watch in watches:
        if stop is not None and stop.is_set():
            break
        summaries.append(poll_watch(ws, watch, source, now, progress, stop))
    return summaries
