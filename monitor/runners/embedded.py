"""The embedded runner: one daemon process on one machine (the SQLite default), and the daemon's entry point.

`run_daemon` picks the runner by the database (`[daemon] runner`, "auto":
PostgreSQL → `monitor.runners.queue`, SQLite → this one).  Why each piece of
the embedded runner is there:

* APScheduler runs the periodic jobs ("tick" claims due watches and starts
  their polls, "sweep" cleans up after dead processes), each with
  `max_instances=1` and `coalesce` (never twice at once, never a burst);
* polls run in a small thread pool, and their items in a `SitePool`
  (`[daemon] workers` threads, at most `[ytdlp] concurrent_per_domain` per
  site): one slow site holds up neither the other watches nor the other
  sites' items; the per-item download deadline of the sources is the backstop;
* a job whose lock key is in flight (a poll of the same watch, the same item)
  is not started again;
* a lock row in the database ("daemon") makes sure only one daemon per
  SQLite database schedules; its holder heartbeats it, and a second daemon
  waits as standby and takes over when the lock is released, goes stale, or
  its holder's process is found dead on this machine (at once, not after
  the stale period);
* SIGTERM/SIGINT only set an event: items in hand finish, items not begun
  are dropped (the next poll lists them again), the polls they belonged to
  are closed as "interrupted", then the lock is released.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.config import Config, ConfigError
from monitor.jobs.poll import default_source, kv
from monitor.jobs.recovery import PollHeartbeat, recover
from monitor.jobs.registry import JOBS, JobContext
from monitor.runners.base import JobRunner
from monitor.sitepool import SitePool
from monitor.sources import Source
from monitor.workspace import Workspace
from storage.processes import holder_alive, holder_id

log = logging.getLogger("provenance.daemon")

LOCK_NAME = "daemon"
WAKE_SECONDS = 0.5  # how often the main thread checks for a stop


class LockHeld(Exception):
    """Another daemon schedules this database (raised with `exit_if_locked`)."""


def stop_on_signals(event: threading.Event | None = None) -> threading.Event:
    """An event that SIGTERM and SIGINT set (call from the main thread)."""
    event = event or threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        log.warning("stopping after the items in hand %s", kv(signal=signal.Signals(signum).name))
        event.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
    return event


def daemon_holder() -> str:
    """`<hostname>:<pid>:<random>`: says which machine and process holds the lock."""
    return holder_id()


def chosen_runner(config: Config) -> str:
    """"embedded" or "queue": `[daemon] runner`, where "auto" follows the database URL."""
    runner = config.section("daemon")["runner"]
    postgres = bool(config.db_url) and config.db_url.split("://")[0].startswith("postgres")
    if runner == "auto":
        return "queue" if postgres else "embedded"
    if runner == "queue" and not postgres:
        raise ConfigError("[daemon] runner = \"queue\" needs a PostgreSQL database (--db postgresql://...); "
                          "SQLite runs the embedded runner")
    return runner


def run_daemon(config: Config, stop_event: threading.Event | None = None, holder: str | None = None,
               exit_if_locked: bool = False, source: Source | None = None) -> None:
    """Run jobs until `stop_event` is set, with the runner the settings choose."""
    if chosen_runner(config) == "queue":
        from monitor.runners.queue import run_queue_daemon

        run_queue_daemon(config, stop_event or threading.Event(), holder or daemon_holder(), source)
        return
    run_embedded_daemon(config, stop_event, holder, exit_if_locked, source)


def run_embedded_daemon(config: Config, stop_event: threading.Event | None = None, holder: str | None = None,
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
            if _acquire(ws, holder, float(settings["lock_stale_seconds"])):
                log.info("lock acquired, scheduling %s", kv(holder=holder, runner="embedded"))
                said_standby = False
                try:
                    recover(ws, holder)
                    runner = EmbeddedRunner(ws, source, holder)
                    runner.schedule_periodic_jobs(config)
                    with PollHeartbeat(ws, holder):
                        runner.run(stop)
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


def _acquire(ws: Workspace, holder: str, stale_seconds: float) -> bool:
    """Take the daemon lock: free, stale, or held by a process found dead on this machine."""
    if ws.repository.acquire_lock(LOCK_NAME, holder, stale_seconds):
        return True
    current = ws.repository.lock_holder(LOCK_NAME)
    if current and holder_alive(current[0]) is False and ws.repository.take_over_lock(LOCK_NAME, current[0], holder):
        log.warning("took the lock over from a dead daemon %s", kv(dead=current[0], holder=holder))
        return True
    return False


class EmbeddedRunner(JobRunner):
    """Runs the registered jobs in this process: polls in a thread pool, items in a `SitePool`."""

    def __init__(self, ws: Workspace, source: Source, holder: str, workers: int | None = None) -> None:
        workers = workers or int(ws.config.section("daemon")["workers"])
        self.ws = ws
        self.halt = threading.Event()  # stop requested or lock lost: no new job
        self.context = JobContext(ws=ws, source=source, defer=self.defer, holder=holder, durable=False,
                                  stop=self.halt)
        self.jobs = ThreadPoolExecutor(workers, thread_name_prefix="job")
        self.items = SitePool(workers, int(ws.config.ytdlp.get("concurrent_per_domain", 1)))
        self.scheduler = BackgroundScheduler(job_defaults={"coalesce": True, "max_instances": 1}, timezone=UTC)
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    def defer(self, job_name: str, **args: Any) -> None:
        job = JOBS[job_name]
        key = job.lock(**args) if job.lock else None
        with self._lock:
            if self.halt.is_set():
                return
            if key is not None:
                if key in self._in_flight:
                    log.debug("job skipped, the same one is in flight %s", kv(job=job_name, lock=key))
                    return
                self._in_flight.add(key)
        try:
            if job.site:
                self.items.submit(job.site(**args), self._run, job_name, key, args)
            else:
                self.jobs.submit(self._run, job_name, key, args)
        except RuntimeError:  # shutting down
            self._release(key)

    def _run(self, job_name: str, key: str | None, args: dict[str, Any]) -> None:
        try:
            JOBS[job_name].run(self.context, **args)
        except Exception:  # a bug or the database going away: the next tick or poll tries again
            log.exception("job failed %s", kv(job=job_name, args=args))
        finally:
            self._release(key)

    def _release(self, key: str | None) -> None:
        if key is not None:
            with self._lock:
                self._in_flight.discard(key)

    def schedule(self, job_name: str, every_seconds: float) -> None:
        self.scheduler.add_job(self.defer, IntervalTrigger(seconds=every_seconds, timezone=UTC), args=[job_name],
                               id=job_name, next_run_time=datetime.now(UTC))

    def heartbeat_lock(self) -> None:
        if not self.ws.repository.heartbeat_lock(LOCK_NAME, self.context.holder):
            log.error("lost the lock (heartbeat too late?); stopping %s", kv(holder=self.context.holder))
            self.halt.set()

    def run(self, stop: threading.Event) -> None:
        stale = float(self.ws.config.section("daemon")["lock_stale_seconds"])
        self.scheduler.add_job(self.heartbeat_lock, IntervalTrigger(seconds=max(1.0, min(stale / 4, 30.0))),
                               id="lock-heartbeat")
        self.scheduler.start()
        try:
            while not self.halt.is_set():
                if stop.wait(WAKE_SECONDS):
                    self.halt.set()
        finally:
            log.info("waiting for the items in hand %s", kv(holder=self.context.holder))
            self.scheduler.shutdown(wait=True)
            dropped = self.items.cancel_waiting()
            self.jobs.shutdown(wait=True)
            self.items.shutdown(wait=True)
            for poll in self.ws.repository.running_polls():
                if poll.holder == self.context.holder:
                    self.ws.repository.interrupt_poll(poll.id, "stopped: the daemon shut down before all its "
                                                               "items were done")
            if dropped:
                log.info("items not begun are left for the next poll %s", kv(items=dropped))
