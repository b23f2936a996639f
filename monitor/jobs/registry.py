"""Every job a runner can run, by name: the one list both runners (and the next jobs) share.

A job is a plain function `run(ctx, **args)` over a `JobContext`, with
JSON-able arguments so it can wait in a database queue, plus what a runner
needs to run it well: a `lock` key (two jobs with the same key never run at
once), a `site` (per-site politeness for jobs that fetch) and, for periodic
jobs, the `[daemon]` setting that holds its period.  Jobs are idempotent: a
runner may run one twice (a retry after its worker died) with no harm.

To add a job (e.g. `revisit_post`, or alerts after an ingest): write its
function in `monitor/jobs/`, then `register(Job("revisit_post", run, ...))`
below; a periodic one names its period setting (add it to `[daemon]` in
monitor/config.py and config.toml).  Another job starts it with
`ctx.defer("revisit_post", post_id=...)`.  Neither runner changes.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.jobs.index_merge import merge_indexes
from monitor.jobs.poll import Defer, ingest_item, item_from_json, poll_watch, state_key
from monitor.jobs.recovery import recover
from monitor.jobs.revisit import revisit_due
from monitor.sitepool import site_of
from monitor.sources import Source
from monitor.workspace import Workspace
from storage.records import WatchRecord

JITTER_FRACTION = 0.1  # jitter never exceeds this share of a watch's interval


@dataclass(frozen=True)
class JobContext:
    """What a running job gets besides its arguments."""

    ws: Workspace
    source: Source
    defer: Defer  # defer(job_name, **args): run another job (now, elsewhere, or later)
    holder: str  # this process (`storage.processes.holder_id`)
    durable: bool  # deferred jobs wait in a durable queue (they outlive this process)
    stop: threading.Event


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[..., Any]  # run(ctx, **args)
    lock: Callable[..., str] | None = None  # key: jobs with the same key never run at once
    site: Callable[..., str] | None = None  # the site it fetches from, for the per-site limit
    every: str | None = None  # periodic: the [daemon] setting with its period in seconds


JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    if job.name in JOBS:
        raise ValueError(f"a job named {job.name!r} is registered already")
    JOBS[job.name] = job
    return job


def periodic_jobs() -> list[Job]:
    return [job for job in JOBS.values() if job.every]


def tick(ctx: JobContext) -> list[int]:
    """Start a poll of every watch that is due, claiming it so no other scheduler polls it this interval."""
    jitter = float(ctx.ws.config.section("daemon")["jitter_seconds"])

    def delay(watch: WatchRecord) -> float:
        return random.uniform(0, min(jitter, watch.interval_seconds * JITTER_FRACTION))

    due = ctx.ws.repository.claim_due_watches(datetime.now(UTC), delay)
    for watch in due:
        ctx.defer("poll_watch", watch_id=watch.id)
    return [w.id for w in due]


def poll(ctx: JobContext, watch_id: int) -> None:
    watch = ctx.ws.repository.get_watch(watch_id)
    if watch is None or not watch.enabled or ctx.stop.is_set():
        return  # paused or removed since it was due
    poll_watch(ctx.ws, watch, ctx.source, defer=ctx.defer, holder=ctx.holder, durable=ctx.durable)


def ingest(ctx: JobContext, watch_id: int, item: dict[str, Any], poll_id: int | None = None,
           now: str | None = None) -> str:
    return ingest_item(ctx.ws, watch_id, item, poll_id, source=ctx.source, now=now).outcome


def sweep(ctx: JobContext) -> None:
    recover(ctx.ws, ctx.holder)


def revisit(ctx: JobContext) -> int:
    """Revisit the stored posts the `[revisit] schedule` says are due; returns how many were looked at."""
    return len(revisit_due(ctx.ws, source=ctx.source, stop=ctx.stop).observations)


def merge_index(ctx: JobContext) -> int:
    """Merge the frame indexes' segments that are due; returns how many were merged away."""
    return sum(merge_indexes(ctx.ws).values())


register(Job("tick", tick, every="refresh_seconds"))
register(Job("poll_watch", poll, lock=lambda watch_id, **_: f"watch-{watch_id}"))
register(Job("ingest_item", ingest,
             lock=lambda watch_id, item, **_: f"item-{watch_id}-{state_key(item_from_json(item))}",
             site=lambda item, **_: site_of(item["url"])))
register(Job("sweep", sweep, every="sweep_seconds"))
register(Job("revisit", revisit, lock=lambda **_: "revisit", every="revisit_seconds"))
register(Job("merge_index", merge_index, lock=lambda **_: "merge-index", every="index_merge_seconds"))
