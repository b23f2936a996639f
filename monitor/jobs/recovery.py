"""Cleaning up after processes that died mid-work, and keeping our own work visibly alive.

A process killed between two steps (power cut, OOM killer, `kill -9`) can
leave: a poll "running" forever, an item's work directory under
`<data_dir>/work`, a `.incoming-*.part` copy in the media store, or a stored
file whose rows never committed.  `recover` removes all of that, and only
that: work directories and `.part` files carry their owner's host and pid
(`storage.processes`), running polls their holder and its heartbeat, and
stored files are removed only when no media row names them after a grace
period.  Every daemon and `run-once` calls it at start; daemons also run it
as the periodic "sweep" job.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitor.jobs.poll import WORK_SUBDIR, WORKDIR_PREFIX, kv
from monitor.workspace import Workspace
from storage.processes import holder_alive, tagged_owner_alive
from storage.records import PollRecord

log = logging.getLogger("provenance.recovery")


@dataclass
class RecoveryReport:
    polls_interrupted: list[int] = field(default_factory=list)
    workdirs: list[str] = field(default_factory=list)  # removed, relative to the data dir
    partial: list[str] = field(default_factory=list)  # `.part` copies removed from the media store
    orphans: list[str] = field(default_factory=list)  # stored files no media row named, removed

    def __bool__(self) -> bool:
        return bool(self.polls_interrupted or self.workdirs or self.partial or self.orphans)


def dead_poll_reason(poll: PollRecord, now: datetime, stale_seconds: float) -> str | None:
    """Why a "running" poll can no longer finish (its process is gone), or None while it may."""
    stale = timedelta(seconds=stale_seconds)
    if poll.holder:
        if holder_alive(poll.holder) is False:
            return f"interrupted: its process {poll.holder} died"
        if holder_alive(poll.holder) is None and (poll.heartbeat_at or poll.started_at) < now - stale:
            return f"interrupted: its process {poll.holder} fell silent (no heartbeat for {stale_seconds:.0f} s)"
        return None
    if poll.items_pending is None and poll.started_at < now - stale:
        return "interrupted: its process died before listing the watch"
    return None  # its items wait in the job queue, which outlives processes


def recover(ws: Workspace, holder: str | None = None) -> RecoveryReport:
    """Close dead processes' polls, remove their work directories, sweep the media store."""
    settings = ws.config.section("daemon")
    report = RecoveryReport()
    now = datetime.now(UTC)
    for poll in ws.repository.running_polls():
        if poll.holder == holder and holder is not None:
            continue
        reason = dead_poll_reason(poll, now, float(settings["lock_stale_seconds"]))
        if reason and ws.repository.interrupt_poll(poll.id, reason):
            report.polls_interrupted.append(poll.id)
    grace = float(settings["orphan_grace_seconds"])
    workroot = ws.config.data_dir / WORK_SUBDIR
    if workroot.is_dir():
        cutoff = time.time() - grace
        for path in workroot.iterdir():
            alive = tagged_owner_alive(path.name, WORKDIR_PREFIX)
            try:
                old = path.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue
            if alive is False or (alive is None and path.name.startswith(WORKDIR_PREFIX) and old):
                shutil.rmtree(path, ignore_errors=True)
                report.workdirs.append(f"{WORK_SUBDIR}/{path.name}")
    swept = ws.store.sweep(ws.repository.store_paths, grace)
    report.partial, report.orphans = swept.partial, swept.orphans
    if report:
        log.warning("recovered after a dead process %s", kv(
            polls_interrupted=len(report.polls_interrupted), workdirs=len(report.workdirs),
            partial_files=len(report.partial), orphan_files=len(report.orphans)))
    return report


class PollHeartbeat:
    """A thread that tells the database every few seconds that `holder`'s running polls are alive."""

    def __init__(self, ws: Workspace, holder: str, every_seconds: float | None = None) -> None:
        stale = float(ws.config.section("daemon")["lock_stale_seconds"])
        self.ws, self.holder = ws, holder
        self.every = every_seconds or max(1.0, min(stale / 4, 30.0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="poll-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.ws.repository.heartbeat_polls(self.holder)
            except Exception as exc:  # the database may be away for a moment: the next beat tries again
                log.warning("poll heartbeat failed %s", kv(holder=self.holder, error=exc))

    def __enter__(self) -> PollHeartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
