"""Polling a watch: list it, skip what is stored, hand each new item to `ingest_item`, record it all.

Two plain job functions, called by `provenance run-once`, by both runners of
the daemon (`monitor.runners`) and by tests alike:

* `poll_watch(ws, watch)`: list → de-duplicate on the archive key → record
  the poll → hand each new item to `ingest_item`: run here one after another
  (no `defer`), or deferred (`defer("ingest_item", ...)`) to a thread pool or
  to the PostgreSQL job queue, where other workers take them in parallel.
* `ingest_item(ws, watch_id, item, poll_id)`: download into a per-item
  temporary directory → analyse (metadata, fingerprint) → ingest (match,
  store), then count the item in its poll.  The poll whose last item is
  counted is closed by that count, wherever it ran.

Both are idempotent.  An item stored already (by this watch, another watch,
another process, or an attempt killed after its commit) is recorded as
"already stored", never as a failure and never stored twice: the archive key
is checked before downloading, again after (some keys are known only then),
and the ingest transaction's `find_post` is the final word.  Counting is per
poll and idempotent too (`SqlRepository.count_poll_item`).

One item failing is recorded against that item, with a retry time that backs
off exponentially, and never stops the poll; only a listing that fails fails
the whole poll.  Files reach the media store only through `ingest_analysed`,
after they were verified and fingerprinted; an item's work directory is
named with its process's host and pid, so what a killed process leaves is
removed by the next one (`monitor.jobs.recovery`) and a live one's never.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.analysis import InputError, analyse_file
from monitor.config import Config
from monitor.failures import kind_of
from monitor.jobs.ingest import ingest_analysed, ingest_file, stored_fingerprinted_media
from monitor.sitepool import SitePool, site_of
from monitor.sources import ClaimedTime, DownloadedItem, ListedItem, Source, SourceError, YtDlpSource
from monitor.workspace import Workspace
from storage import NotFound, StorageError
from storage.failpoints import failpoint
from storage.processes import file_tag, holder_id
from storage.records import WatchRecord

log = logging.getLogger("provenance.poll")

ITEM_ERRORS = (SourceError, InputError, StorageError, OSError)
STAGES = ("list", "download", "analyse", "ingest")  # analyse = metadata + fingerprint; ingest = match + store
WORK_SUBDIR = "work"
WORKDIR_PREFIX = "item-"
# defer(job_name, **json_args): hands a job to a runner (see monitor.runners.base.JobRunner.defer)
Defer = Callable[..., None]


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
class ItemOutcome:
    """What `ingest_item` did with one item."""

    outcome: str  # storage.repository.ITEM_OUTCOMES: "stored", "already stored", "failed"
    archive_key: str  # the item's state key (`state_key`)
    url: str
    post_id: int | None = None
    error: str | None = None
    kind: str | None = None  # `monitor.failures` kind of `error`
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


@dataclass
class PollSummary:
    """The outcome of one poll, as stored in its poll record plus timings."""

    watch: WatchRecord
    poll_id: int
    status: str  # "running" (items still queued), "ok", "partial", "failed", "interrupted"
    items_seen: int = 0
    items_new: int = 0  # stored by this poll
    items_failed: int = 0
    items_already: int = 0  # stored meanwhile by someone else (another process, watch or attempt)
    items_waiting: int = 0  # failed before and not yet due for retry
    items_queued: int = 0  # handed to ingest jobs
    errors: list[dict[str, Any]] = field(default_factory=list)  # {archive_key, url, kind, error}
    listing_error: str | None = None
    listing_kind: str | None = None  # `monitor.failures` kind of listing_error
    interrupted: bool = False  # stopped before all its items were done
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


def state_key(item: ListedItem) -> str:
    """The key of an item's poll state: its archive key, or its URL when that is known only after download."""
    return item.archive_key or f"url {item.url}"


# --- items as job arguments (JSON) ----------------------------------------------

def item_to_json(item: ListedItem) -> dict[str, Any]:
    """A listed item as plain JSON, to travel as a job argument."""
    data = asdict(item)
    if item.claimed is not None:
        data["claimed"] = item.claimed.as_json()
    return json.loads(json.dumps(data, default=str))


def item_from_json(data: Mapping[str, Any] | ListedItem) -> ListedItem:
    if isinstance(data, ListedItem):
        return data
    claimed = data.get("claimed")
    return ListedItem(url=data["url"], archive_key=data.get("archive_key"), title=data.get("title"),
                      claimed=ClaimedTime(datetime.fromisoformat(claimed["at"]), claimed["precision"],
                                          claimed["source"]) if claimed else None,
                      extra=dict(data.get("extra") or {}))


# --- the poll job ------------------------------------------------------------

def poll_watch(ws: Workspace, watch: WatchRecord | int, source: Source | None = None, now: datetime | None = None,
               progress: Callable[[PollProgress], None] | None = None, stop: threading.Event | None = None,
               defer: Defer | None = None, holder: str | None = None, durable: bool = False) -> PollSummary:
    """Poll one watch now and record the poll; see the module doc for the steps.

    Without `defer` the items are ingested here, one after another, and the
    summary is complete.  With it, each item becomes an `ingest_item` job and
    the summary holds the listing (`items_queued`); the poll record is closed
    by the last item's count.  `durable`: the jobs wait in a durable queue, so
    the poll no longer needs `holder` (this process) alive.  `now` is when
    retry decisions are made (default: the current time).  When `stop` is
    set, inline items stop after the one in hand.
    """
    repo = ws.repository
    if isinstance(watch, int):
        found = repo.get_watch(watch)
        if found is None:
            raise NotFound(f"no watch with id {watch}; see `provenance watch list`")
        watch = found
    source = source or default_source(ws.config)
    now = now or datetime.now(UTC)
    poll = repo.start_poll(watch.id, holder or holder_id())  # a holder, so a dead one's poll can be closed
    failpoint("poll-started")
    summary = PollSummary(watch=watch, poll_id=poll.id, status="running")
    log.info("poll started %s", kv(watch=watch.id, poll=poll.id, url=watch.url))
    try:
        todo = _list_new_items(ws, watch, source, now, summary)
    except Exception as exc:  # a bug or the database going away: the poll record must still end
        summary.listing_error = f"poll stopped by an unexpected error: {exc}"
        _finish_failed(ws, watch, summary)
        raise
    if summary.listing_error is not None:
        _finish_failed(ws, watch, summary)
        return summary
    repo.poll_listed(poll.id, summary.items_seen, len(todo), handed_over=bool(defer) and durable)
    _mark_polled(ws, watch)
    if progress:
        progress(PollProgress(watch, 0, len(todo)))
    if defer is not None:
        for item in todo:
            defer("ingest_item", watch_id=watch.id, poll_id=poll.id, item=item_to_json(item), now=now.isoformat())
        summary.items_queued = len(todo)
        log.info("poll listed %s", kv(watch=watch.id, poll=poll.id, seen=summary.items_seen, queued=len(todo)))
        return summary
    for done, item in enumerate(todo, 1):
        if stop is not None and stop.is_set():
            summary.interrupted = True
            repo.interrupt_poll(poll.id, f"stopped with {len(todo) - done + 1} items left")
            log.info("poll interrupted %s", kv(watch=watch.id, items_left=len(todo) - done + 1))
            break
        add_outcome(summary, ingest_item(ws, watch.id, item, poll.id, source=source, now=now))
        if progress:
            progress(PollProgress(watch, done, len(todo), item.url))
    return finished_summary(ws, summary)


def _list_new_items(ws: Workspace, watch: WatchRecord, source: Source, now: datetime,
                    summary: PollSummary) -> list[ListedItem]:
    started = time.perf_counter()
    try:
        listed = source.list_items(watch.url, watch.kind)
    except (SourceError, OSError) as exc:
        summary.listing_error = str(exc) or type(exc).__name__
        summary.listing_kind = kind_of(exc)
        log.warning("listing failed %s", kv(watch=watch.id, url=watch.url, kind=summary.listing_kind,
                                            error=summary.listing_error))
        return []
    finally:
        summary.seconds["list"] += time.perf_counter() - started
    summary.items_seen = len(listed)
    todo = [item for item in listed if _needs_work(ws, watch, item, now, summary)]
    cap = int(ws.config.section("poll")["max_items_per_poll"])
    if cap and len(todo) > cap:
        log.info("poll capped %s", kv(watch=watch.id, items=len(todo), max_items_per_poll=cap))
        todo = todo[:cap]
    return todo


def _finish_failed(ws: Workspace, watch: WatchRecord, summary: PollSummary) -> None:
    summary.status = "failed"
    ws.repository.finish_poll(summary.poll_id, summary.items_seen, 0, 0,
                              [{"archive_key": None, "url": watch.url, "kind": summary.listing_kind or "unknown",
                                "error": summary.listing_error}], "failed")
    _mark_polled(ws, watch)
    log.info("poll finished %s", kv(watch=watch.id, poll=summary.poll_id, status="failed"))


def _mark_polled(ws: Workspace, watch: WatchRecord) -> None:
    try:
        ws.repository.mark_watch_polled(watch.id, datetime.now(UTC))
    except NotFound:
        log.info("watch removed while it was polled %s", kv(watch=watch.id))


def add_outcome(summary: PollSummary, outcome: ItemOutcome) -> None:
    """Add one item's timings and result to a summary that ran its items in this process."""
    for stage, seconds in outcome.seconds.items():
        summary.seconds[stage] += seconds
    summary.items_already += outcome.outcome == "already stored"


def finished_summary(ws: Workspace, summary: PollSummary) -> PollSummary:
    """`summary` with the counts, errors and status of its poll record (what every item counted there)."""
    record = ws.repository.get_poll(summary.poll_id)
    if record is not None:
        summary.status = record.status
        summary.items_new, summary.items_failed = record.items_new, record.items_failed
        summary.errors = [e for e in record.errors if e.get("archive_key") is not None]
        summary.interrupted = summary.interrupted or record.status == "interrupted"
    log.info("poll finished %s", kv(watch=summary.watch.id, poll=summary.poll_id, status=summary.status,
                                    seen=summary.items_seen, new=summary.items_new, failed=summary.items_failed,
                                    already=summary.items_already, interrupted=summary.interrupted))
    return summary


def _needs_work(ws: Workspace, watch: WatchRecord, item: ListedItem, now: datetime, summary: PollSummary) -> bool:
    """False for items stored already and failed items not due for retry yet."""
    state = ws.repository.get_watch_item(watch.id, state_key(item))
    if state is not None and state.status == "stored":
        return False
    if item.archive_key and ws.repository.get_post_by_archive_key(item.archive_key) is not None:
        return False  # stored through another watch or `find-earliest --ingest`
    if state is not None and state.status == "failed" and (state.next_attempt_at is None
                                                            or state.next_attempt_at > now):
        summary.items_waiting += 1
        log.debug("not due for retry %s", kv(watch=watch.id, archive_key=state.archive_key,
                                              next_attempt_at=state.next_attempt_at))
        return False
    return True


# --- the item job ------------------------------------------------------------

def ingest_item(ws: Workspace, watch_id: int, item: ListedItem | Mapping[str, Any], poll_id: int | None = None,
                source: Source | None = None, now: datetime | str | None = None) -> ItemOutcome:
    """Download, analyse and ingest one listed item of a watch, then count it in its poll; safe to run twice.

    Item failures (download, unusable file, storage) are recorded against
    the item with a retry time and returned, not raised.
    """
    item = item_from_json(item)
    source = source or default_source(ws.config)
    now = datetime.fromisoformat(now) if isinstance(now, str) else (now or datetime.now(UTC))
    key = state_key(item)
    result = ItemOutcome("stored", key, item.url)
    known = ws.repository.get_post_by_archive_key(item.archive_key) if item.archive_key else None
    state = ws.repository.get_watch_item(watch_id, key)
    if known is None and state is not None and state.status == "stored" and state.post_id:
        known = ws.repository.get_post(state.post_id)
    if known is not None:
        result.outcome, result.post_id = "already stored", known.id
    else:
        try:
            _download_and_ingest(ws, watch_id, item, source, result)
        except ITEM_ERRORS as exc:
            result.outcome, result.error = "failed", " ".join(str(exc).split()) or type(exc).__name__
            result.kind = "storage" if isinstance(exc, StorageError) else kind_of(exc)
        except Exception as exc:  # a bug on one odd item must not leave its poll waiting for it forever
            log.exception("item failed unexpectedly %s", kv(watch=watch_id, url=item.url))
            result.outcome, result.error = "failed", f"unexpected error: {' '.join(str(exc).split())[:300]}"
            result.kind = "unknown"
    _count(ws, watch_id, item, poll_id, now, result)
    failpoint("after-item-recorded")
    return result


def _download_and_ingest(ws: Workspace, watch_id: int, item: ListedItem, source: Source,
                         result: ItemOutcome) -> None:
    workroot = ws.config.data_dir / WORK_SUBDIR
    workroot.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX + file_tag(), dir=workroot))
    try:
        failpoint("item-workdir")
        started = time.perf_counter()
        try:
            got: DownloadedItem = source.download(item, workdir)
        finally:
            result.seconds["download"] += time.perf_counter() - started
        failpoint("after-download")
        key = got.post.archive_key
        if item.archive_key is None and key and (known := ws.repository.get_post_by_archive_key(key)):
            # the key was known only after download: check it again before storing
            result.outcome, result.post_id = "already stored", known.id
            return
        post = got.post.to_new_post(0, watch_id=watch_id)
        started = time.perf_counter()
        try:
            # the very same bytes stored and fingerprinted already: ingest_file only records the new post
            analysed = None if stored_fingerprinted_media(ws, got.path) \
                else analyse_file(got.path, ws.settings, exif=ws.exif, limits=ws.config.limits, query=False)
        finally:
            result.seconds["analyse"] += time.perf_counter() - started
        failpoint("after-analyse")
        started = time.perf_counter()
        try:
            stored = ingest_file(ws, got.path, post) if analysed is None else ingest_analysed(ws, analysed, post)
        finally:
            result.seconds["ingest"] += time.perf_counter() - started
        failpoint("after-commit")
        result.post_id = stored.post.id
        if not stored.new_post:  # the loser of a race, or a retry of an attempt that had committed
            result.outcome = "already stored"
        log.info("item stored %s", kv(watch=watch_id, archive_key=key, url=item.url, media=stored.media.id,
                                      new_media=stored.new_media, post=stored.post.id, new_post=stored.new_post,
                                      matches=len(stored.matches)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _count(ws: Workspace, watch_id: int, item: ListedItem, poll_id: int | None, now: datetime,
           result: ItemOutcome) -> None:
    repo = ws.repository
    retry_at = None
    if result.outcome == "failed":
        state = repo.get_watch_item(watch_id, result.archive_key)
        failures = (state.attempts + 1) if state is not None and state.status == "failed" else 1
        retry_at = now + retry_delay(ws.config.section("poll"), failures)
        log.warning("item failed %s", kv(watch=watch_id, archive_key=result.archive_key, url=item.url,
                                         kind=result.kind, error=result.error, attempt=failures,
                                         retry_at=retry_at.isoformat(timespec="seconds")))
    elif result.outcome == "already stored":
        log.info("already stored %s", kv(watch=watch_id, archive_key=result.archive_key, url=item.url,
                                         post=result.post_id))
    try:
        if poll_id is None:
            if result.outcome == "failed":
                repo.record_item_failed(watch_id, result.archive_key, item.url, result.error or "", retry_at)
            else:
                repo.record_item_stored(watch_id, result.archive_key, item.url, result.post_id)
        else:
            repo.count_poll_item(poll_id, watch_id, result.archive_key, item.url, result.outcome,
                                 post_id=result.post_id, error=result.error, kind=result.kind,
                                 next_attempt_at=retry_at)
    except StorageError:
        raise
    except Exception as exc:  # the watch was removed meanwhile (foreign key): nothing left to record
        if ws.repository.get_watch(watch_id) is not None:
            raise
        log.info("watch removed while its item was ingested %s", kv(watch=watch_id, url=item.url, error=exc))


# --- polling several watches in this process ---------------------------------

def poll_all(ws: Workspace, watch_ids: list[int] | None = None, source: Source | None = None,
             now: datetime | None = None, progress: Callable[[PollProgress], None] | None = None,
             stop: threading.Event | None = None, workers: int | None = None,
             holder: str | None = None) -> list[PollSummary]:
    """Poll the given watches (paused ones too) or, by default, every enabled watch, in this process.

    Listings run side by side, and the items of every poll go to one pool of
    `workers` threads (default `[daemon] workers`), at most
    `[ytdlp] concurrent_per_domain` per site: a slow site never holds up the
    others.  Returns once every item is done (or, after `stop`, once the
    items in hand are).
    """
    if watch_ids:
        watches = []
        for watch_id in watch_ids:
            watch = ws.repository.get_watch(watch_id)
            if watch is None:
                raise NotFound(f"no watch with id {watch_id}; see `provenance watch list`")
            watches.append(watch)
    else:
        watches = ws.repository.list_watches(enabled_only=True)
    if not watches:
        return []
    source = source or default_source(ws.config)
    now = now or datetime.now(UTC)
    workers = workers or int(ws.config.section("daemon")["workers"])
    per_site = int(ws.config.ytdlp.get("concurrent_per_domain", 1))
    summaries = {}
    done: dict[int, int] = {}
    lock = threading.Lock()

    with SitePool(workers, per_site) as items, ThreadPoolExecutor(min(len(watches), workers),
                                                                   thread_name_prefix="poll") as listings:
        def run_item(summary: PollSummary, item_json: dict[str, Any]) -> None:
            outcome = ingest_item(ws, summary.watch.id, item_json, summary.poll_id, source=source, now=now)
            with lock:
                add_outcome(summary, outcome)
                done[summary.poll_id] = done.get(summary.poll_id, 0) + 1
                if progress:
                    progress(PollProgress(summary.watch, done[summary.poll_id], summary.items_queued, outcome.url))

        def poll_one(watch: WatchRecord) -> None:
            if stop is not None and stop.is_set():
                return
            pending: list[dict[str, Any]] = []
            summary = poll_watch(ws, watch, source, now, progress, stop, holder=holder,
                                 defer=lambda _job, **args: pending.append(args["item"]))
            summaries[watch.id] = summary
            for item_json in pending:
                items.submit(site_of(item_json["url"]), run_item, summary, item_json)

        for future in [listings.submit(poll_one, watch) for watch in watches]:
            future.result()
        while not items.join(timeout=0.5):
            if stop is not None and stop.is_set():
                items.cancel_waiting()
                items.join()
                break
    results = []
    for watch in watches:
        summary = summaries.get(watch.id)
        if summary is None:
            continue
        if summary.ran:
            if stop is not None and stop.is_set() and \
                    ws.repository.interrupt_poll(summary.poll_id, "stopped before all its items were done"):
                summary.interrupted = True
            summary = finished_summary(ws, summary)
        results.append(summary)
    return results
