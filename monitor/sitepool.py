"""A bounded thread pool that runs at most N tasks at once per site, and never waits on a busy site.

Items of a poll go to different sites at different speeds.  A plain pool
whose threads block on a per-site semaphore lets one slow site fill every
thread; here a task for a busy site waits in that site's own queue instead,
so free threads always go to other sites.  The site of a URL is its host
without "www." (as `monitor.sources.ytdlp.DomainLimiter` counts it, whose
`concurrent_per_domain` setting is the per-site limit here too).
"""

from __future__ import annotations

import logging
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger("provenance.pool")


def site_of(url: str) -> str:
    """The host a URL fetches from (www. ignored); "" for a URL too broken to name one (it will fail alone)."""
    try:
        return (urllib.parse.urlsplit(url).hostname or "").removeprefix("www.")
    except ValueError:  # e.g. "http://[::1" from a hostile feed
        return ""


class SitePool:
    """`submit(site, fn, *args)` runs fn in one of `workers` threads, at most `per_site` at once per site."""

    def __init__(self, workers: int, per_site: int, name: str = "item") -> None:
        if workers < 1 or per_site < 1:
            raise ValueError(f"workers and per_site must be at least 1, got {workers} and {per_site}")
        self.per_site = per_site
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._lock = threading.Condition()
        self._running: dict[str, int] = {}
        self._waiting: dict[str, deque[tuple[Future, Callable[[], Any]]]] = {}
        self._unfinished = 0
        self._closed = False
        self._stopping = False  # after cancel_waiting: tasks not begun are cancelled, not run

    def submit(self, site: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        call = lambda: fn(*args, **kwargs)  # noqa: E731
        with self._lock:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            self._unfinished += 1
            if self._running.get(site, 0) < self.per_site:
                self._start(site, future, call)
            else:
                self._waiting.setdefault(site, deque()).append((future, call))
        return future

    def _start(self, site: str, future: Future, call: Callable[[], Any]) -> None:
        self._running[site] = self._running.get(site, 0) + 1
        self._executor.submit(self._run, site, future, call)

    def _run(self, site: str, future: Future, call: Callable[[], Any]) -> None:
        try:
            if self._stopping:
                future.cancel()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # handed to whoever waits on the future
                    future.set_exception(exc)
        finally:
            with self._lock:
                self._running[site] -= 1
                queue = self._waiting.get(site)
                if queue:
                    self._start(site, *queue.popleft())
                    if not queue:
                        del self._waiting[site]
                self._unfinished -= 1
                self._lock.notify_all()

    def cancel_waiting(self) -> int:
        """Drop the tasks not started yet (a stop): their futures are cancelled. Returns how many."""
        with self._lock:
            self._stopping = True
            dropped = [entry for queue in self._waiting.values() for entry in queue]
            self._waiting.clear()
            for future, _ in dropped:
                future.cancel()
            self._unfinished -= len(dropped)
            self._lock.notify_all()
        return len(dropped)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every submitted task has finished; False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._unfinished == 0, timeout)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=wait)

    def __enter__(self) -> SitePool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
