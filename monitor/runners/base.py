"""The job-runner interface: what schedules and runs the jobs of `monitor.jobs.registry`.

Two implementations share the same idempotent job functions:

* `monitor.runners.embedded.EmbeddedRunner` (SQLite, one machine): one
  process, APScheduler for the periodic jobs, a small thread pool for polls
  and a per-site-limited one for items;
* `monitor.runners.queue.QueueRunner` (PostgreSQL, any number of processes on
  any number of machines): jobs wait in procrastinate's queue in the database
  and every `provenance daemon` takes its share.

A runner knows nothing of polls or items: it runs named jobs, honours their
lock keys and sites, and runs the periodic ones on their schedule.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

from monitor.config import Config
from monitor.jobs.registry import periodic_jobs


class JobRunner(ABC):
    """Runs registered jobs: `defer` one now, `schedule` one periodically, `run` until stopped."""

    @abstractmethod
    def defer(self, job_name: str, **args: Any) -> None:
        """Run job `job_name` with JSON-able `args` as soon as a worker is free (here or elsewhere)."""

    @abstractmethod
    def schedule(self, job_name: str, every_seconds: float) -> None:
        """Run job `job_name` (no arguments) every `every_seconds`, once per period across all runners."""

    @abstractmethod
    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; the jobs in hand finish (ingest stores an item whole or not at all)."""

    def schedule_periodic_jobs(self, config: Config) -> None:
        """`schedule` every registered periodic job at the period its `[daemon]` setting says (0: never)."""
        settings = config.section("daemon")
        for job in periodic_jobs():
            if float(settings[job.every]) > 0:
                self.schedule(job.name, float(settings[job.every]))
