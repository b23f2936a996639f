"""The queue runner: any number of `provenance daemon` processes on any number of machines, over PostgreSQL.

The jobs of `monitor.jobs.registry` become procrastinate tasks; the queue
lives in the database (procrastinate's tables, applied like our migrations
by `storage.queue_schema`), so no broker is needed and nothing is
home-made.  How the promises are kept:

* each watch is polled once per interval whoever runs: the periodic "tick"
  is deferred once per period across all daemons (procrastinate's periodic
  defers are unique per timestamp in the database), and a tick claims a due
  watch with one conditional UPDATE (`claim_due_watches`);
* never by two at once: a poll job's `lock` is its watch, and its
  `queueing_lock` keeps one poll per watch waiting;
* items of a poll are ingested in parallel: each is its own job, taken by
  whichever worker is free on any machine (`[daemon] workers` per daemon);
* politeness: an item job's `lock` is one of `[ytdlp] concurrent_per_domain`
  slots of its site, taken in turn, so no more items than that run at once
  per site, across every daemon, and no worker waits on a busy site;
* retries with backoff: a job that raises (the database went away, a bug) is
  retried up to `[daemon] job_attempts` times, waiting exponentially longer;
  item failures are not raised but recorded with their own backoff;
* a killed worker's jobs are picked up again: workers heartbeat; a periodic
  task hands jobs of workers silent for `[daemon] stalled_worker_seconds`
  back to the queue (within a minute at the defaults).  Jobs are
  idempotent, so a job run again after its worker died mid-way does no harm.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued

from monitor.config import Config
from monitor.jobs.poll import default_source, kv
from monitor.jobs.recovery import PollHeartbeat, recover
from monitor.jobs.registry import JOBS, Job, JobContext
from monitor.runners.base import JobRunner
from monitor.sources import Source
from monitor.workspace import Workspace

log = logging.getLogger("provenance.queue")

QUEUE = "provenance"
RETRY_STALLED = "retry_stalled_jobs"


def conninfo(db_url: str) -> str:
    """A libpq URL (what psycopg's pool takes) from any PostgreSQL spelling of ours."""
    scheme, rest = db_url.split("://", 1)
    return "postgresql://" + rest


def every_to_cron(seconds: float) -> str:
    """A cron line (seconds in the 6th column) that fires about every `seconds`."""
    seconds = max(1, round(seconds))
    if seconds < 60:
        return f"* * * * * */{seconds}"
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return f"*/{minutes} * * * *"
    hours = max(1, round(minutes / 60))
    return f"0 */{hours} * * *" if hours < 24 else "0 0 * * *"


class QueueRunner(JobRunner):
    """Registered jobs as procrastinate tasks in a PostgreSQL queue shared by every daemon."""

    def __init__(self, config: Config) -> None:
        self.config = config
        settings = config.section("daemon")
        self.workers = int(settings["workers"])
        self.stalled_seconds = float(settings["stalled_worker_seconds"])
        self.per_site = int(config.ytdlp.get("concurrent_per_domain", 1))
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(config.db_url), min_size=1, max_size=self.workers + 4))
        self.context: JobContext | None = None
        self._slots: dict[str, itertools.count] = {}
        self._slots_lock = threading.Lock()
        retry = procrastinate.RetryStrategy(max_attempts=int(settings["job_attempts"]), exponential_wait=2)
        for job in JOBS.values():
            self.app.task(name=job.name, queue=QUEUE, retry=retry, pass_context=False)(self._task_body(job))

    def _task_body(self, job: Job) -> Callable[..., Any]:
        def body(**args: Any) -> Any:
            args.pop("timestamp", None)  # periodic tasks get their schedule time
            if self.context is None:
                raise RuntimeError("the queue runner has no job context; start it with run()")
            return job.run(self.context, **args)

        body.__name__ = job.name
        return body

    def _options(self, job: Job, args: dict[str, Any]) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if job.site:
            # one of `per_site` lock slots of the site, taken in turn: at most that many of its items run at
            # once, anywhere, and the items of a poll spread evenly over the slots (a copy of an item queued
            # again by a later poll finds it stored before downloading, or at the latest when storing)
            site = job.site(**args)
            with self._slots_lock:
                slot = next(self._slots.setdefault(site, itertools.count())) % self.per_site
            options["lock"] = f"site {site} {slot}"
        elif job.lock:
            options["lock"] = job.lock(**args)
            options["queueing_lock"] = f"queued {options['lock']}"
        return options

    def defer(self, job_name: str, **args: Any) -> None:
        job = JOBS[job_name]
        try:
            self.app.configure_task(job_name, queue=QUEUE, **self._options(job, args)).defer(**args)
        except AlreadyEnqueued:
            log.debug("job already waiting in the queue %s", kv(job=job_name, args=args))

    def schedule(self, job_name: str, every_seconds: float) -> None:
        task = self.app.tasks[job_name]
        self.app.periodic(cron=every_to_cron(every_seconds), periodic_id=job_name)(task)

    def _schedule_stalled_retry(self) -> None:
        stalled = self.stalled_seconds

        async def retry_stalled_jobs(timestamp: int) -> None:
            for job in await self.app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled):
                log.warning("job of a dead worker back in the queue %s", kv(job=job.task_name, id=job.id,
                                                                            args=job.task_kwargs))
                await self.app.job_manager.retry_job(job)

        task = self.app.task(name=RETRY_STALLED, queue=QUEUE, pass_context=False)(retry_stalled_jobs)
        self.app.periodic(cron=every_to_cron(max(1.0, stalled / 3)), periodic_id=RETRY_STALLED)(task)

    def run(self, stop: threading.Event) -> None:
        self._schedule_stalled_retry()
        asyncio.run(self._work(stop))

    async def _work(self, stop: threading.Event) -> None:
        async with self.app.open_async():
            worker = asyncio.create_task(self.app.run_worker_async(
                queues=[QUEUE], name="provenance", concurrency=self.workers, install_signal_handlers=False,
                update_heartbeat_interval=max(0.5, self.stalled_seconds / 4),
                stalled_worker_timeout=self.stalled_seconds, fetch_job_polling_interval=1.0,
                abort_job_polling_interval=5.0))
            while not stop.is_set() and not worker.done():
                await asyncio.sleep(0.2)
            if not worker.done():
                log.info("waiting for the jobs in hand")
                worker.cancel()  # procrastinate stops taking jobs and lets the running ones finish
            try:
                await worker
            except asyncio.CancelledError:
                pass


def run_queue_daemon(config: Config, stop: threading.Event, holder: str, source: Source | None = None) -> None:
    """Work on the shared queue until `stop` is set (as many of these as you like, anywhere)."""
    source = source or default_source(config)
    ws = Workspace.open(config)  # applies procrastinate's schema with the migrations
    try:
        recover(ws, holder)
        runner = QueueRunner(config)
        runner.context = JobContext(ws=ws, source=source, defer=runner.defer, holder=holder, durable=True,
                                    stop=stop)
        runner.schedule_periodic_jobs(config)
        log.info("queue worker started %s", kv(holder=holder, runner="queue", workers=runner.workers,
                                               jobs=",".join(JOBS)))
        with PollHeartbeat(ws, holder):
            runner.run(stop)
    finally:
        ws.close()
    log.info("daemon stopped %s", kv(holder=holder))
