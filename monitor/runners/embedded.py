"""The daemon: `poll_watch` on each enabled watch's schedule, one daemon per database.

A thin APScheduler 3 wrapper around the poll job.  Why each piece is there:

* one interval job per enabled watch, with jitter (so watches added together
  do not hit their sites together), `max_instances=1` and `coalesce` (a slow
  poll is never run twice at once nor caught up in a burst);
* a refresh job re-reads the watches table, so `watch add/pause/resume/remove`
  from another process takes effect without a restart;
* polls run in a single worker thread: the in-memory frame index of the
  Workspace is not thread-safe, and one poll at a time is gentle on sites;
* a lock row in the database ("daemon") makes sure only one daemon per
  database schedules; its holder heartbeats it, and a second daemon waits as
  standby and takes over when the lock is released or goes stale;
* SIGTERM/SIGINT only set an event: the poll in hand stops after its current
  item (ingest stores an item whole or not at all), then the lock is released.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config
from monitor.workspace import Workspace
from monitor.jobs.poll import default_source, kv, poll_watch
from monitor.sources import Source
from storage.records import WatchRecord

log = logging.getLogger("provenance.daemon")

LOCK_NAME = "daemon"
POLL_EXECUTOR = "polls"
JITTER_FRACTION = 0.1  # jitter never exceeds this share of a watch's interval
FIRST_POLL_WITHIN_SECONDS = 5.0  # after start-up (or a new watch), the first poll comes this soon
WAKE_SECONDS = 0.5  # how often the main thread checks for a stop


class LockHeld(Exception):
    """Another daemon schedules this database (raised with `exit_if_locked`)."""


def stop_on_signals(event: threading.Event | None = None) -> threading.Event:
    """An event that SIGTERM and SIGINT set (call from the main thread)."""
    event = event or threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        log.warning("stopping after the item in hand %s", kv(signal=signal.Signals(signum).name))
        event.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
    return event


def daemon_holder() -> str:
    """`<hostname>:<pid>:<random>`: says which machine and process holds the lock."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def run_daemon(config: Config, stop_event: threading.Event | None = None, holder: str | None = None,
               exit_if_locked: bool = False, source: Source | None = None) -> None:
    """Schedule polls until `stop_event` is set; standby while another daemon holds the lock.

    Raises `LockHeld` instead of waiting when `exit_if_locked`.
    """
    stop = stop_event or threading.Event()
    holder = holder or daemon_holder()
    settings = config.section("daemon")
    source = source or default_source(config)
    ws = Workspace.open(config)
    try:
        said_standby = False
        while not stop.is_set():
            if ws.repository.acquire_lock(LOCK_NAME, holder, float(settings["lock_stale_seconds"])):
                log.info("lock acquired, scheduling %s", kv(holder=holder))
                said_standby = False
                try:
                    _schedule(ws, source, stop, holder, settings)
                finally:
                    ws.repository.release_lock(LOCK_NAME, holder)
                    log.info("lock released %s", kv(holder=holder))
                continue
            current = ws.repository.lock_holder(LOCK_NAME)
            owner = f"{current[0]} (last heartbeat {current[1].isoformat()})" if current else "another daemon"
            if exit_if_locked:
                raise LockHeld(f"{owner} holds the lock on this database and schedules its polls; "
                               "stop it, or run `provenance daemon` without --exit-if-locked to wait as standby")
            if not said_standby:
                log.warning("standby: %s holds the lock on this database; retrying every %ss %s",
                            owner, settings["standby_retry_seconds"], kv(holder=holder))
                said_standby = True
            stop.wait(float(settings["standby_retry_seconds"]))
    finally:
        ws.close()
    log.info("daemon stopped %s", kv(holder=holder))


def _schedule(ws: Workspace, source: Source, stop: threading.Event, holder: str,
              settings: dict[str, Any]) -> None:
    """Run the scheduler while we hold the lock; returns on stop or when the lock is lost."""
    halt = threading.Event()  # stop requested or lock lost: no new poll, no new item
    scheduler = BackgroundScheduler(
        executors={"default": ThreadPoolExecutor(2), POLL_EXECUTOR: ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )
    jobs = WatchJobs(scheduler, ws, source, halt, float(settings["jitter_seconds"]))
    stale = float(settings["lock_stale_seconds"])

    def heartbeat() -> None:
        if not ws.repository.heartbeat_lock(LOCK_NAME, holder):
            log.error("lost the lock (heartbeat too late?); stopping polls %s", kv(holder=holder))
            halt.set()

    jobs.refresh()
    scheduler.add_job(jobs.refresh, IntervalTrigger(seconds=float(settings["refresh_seconds"])), id="refresh")
    scheduler.add_job(heartbeat, IntervalTrigger(seconds=max(1.0, min(stale / 4, 30.0))), id="heartbeat")
    scheduler.start()
    try:
        while not halt.is_set():
            if stop.wait(WAKE_SECONDS):
                halt.set()
    finally:
        log.info("waiting for the running poll to finish its item %s", kv(holder=holder))
        scheduler.shutdown(wait=True)


class WatchJobs:
    """Keeps one scheduler job per enabled watch in step with the watches table."""

    def __init__(self, scheduler: BackgroundScheduler, ws: Workspace, source: Source, halt: threading.Event,
                 jitter_seconds: float) -> None:
        self.scheduler = scheduler
        self.ws = ws
        self.source = source
        self.halt = halt
        self.jitter_seconds = jitter_seconds
        self.intervals: dict[int, int] = {}  # scheduled watch id -> its interval

    @staticmethod
    def job_id(watch_id: int) -> str:
        return f"watch-{watch_id}"

    def trigger(self, watch: WatchRecord) -> IntervalTrigger:
        jitter = min(self.jitter_seconds, watch.interval_seconds * JITTER_FRACTION)
        return IntervalTrigger(seconds=watch.interval_seconds, jitter=jitter or None, timezone=UTC)

    def refresh(self) -> None:
        watches = {w.id: w for w in self.ws.repository.list_watches(enabled_only=True)}
        for watch_id in [i for i in self.intervals if i not in watches]:
            self.scheduler.remove_job(self.job_id(watch_id))
            del self.intervals[watch_id]
            log.info("watch unscheduled (paused or removed) %s", kv(watch=watch_id))
        for watch in watches.values():
            if watch.id not in self.intervals:
                first = datetime.now(UTC) + timedelta(
                    seconds=random.uniform(0, min(FIRST_POLL_WITHIN_SECONDS, watch.interval_seconds * JITTER_FRACTION)))
                self.scheduler.add_job(self.poll, self.trigger(watch), args=[watch.id], id=self.job_id(watch.id),
                                       executor=POLL_EXECUTOR, next_run_time=first,
                                       misfire_grace_time=watch.interval_seconds)
                log.info("watch scheduled %s", kv(watch=watch.id, every=watch.interval_seconds, url=watch.url))
            elif self.intervals[watch.id] != watch.interval_seconds:
                self.scheduler.reschedule_job(self.job_id(watch.id), trigger=self.trigger(watch))
                log.info("watch rescheduled %s", kv(watch=watch.id, every=watch.interval_seconds))
            self.intervals[watch.id] = watch.interval_seconds

    def poll(self, watch_id: int) -> None:
        if self.halt.is_set():
            return
        watch = self.ws.repository.get_watch(watch_id)
        if watch is None or not watch.enabled:
            return  # paused or removed since the last refresh
        try:
            poll_watch(self.ws, watch, self.source, stop=self.halt)
        except Exception:
            # e.g. the watch was removed mid-poll, or the database went away; the next run tries again
            log.exception("poll failed %s", kv(watch=watch_id, url=watch.url))
