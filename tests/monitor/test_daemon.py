"""`provenance daemon` with the embedded runner as a real process: scheduled polls, clean SIGTERM, one daemon per
database with a standby, on SQLite and (forced by `[daemon] runner`) PostgreSQL; the queue runner is in test_queue."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from monitor.jobs.registry import JobContext, tick
from storage import SqlRepository, open_database
from tests.monitor.test_poll import Site, rfc822, site, workspace  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
DAEMON_CONFIG = """
[daemon]
runner = "embedded"
jitter_seconds = 0
refresh_seconds = 1
lock_stale_seconds = 30
standby_retry_seconds = 1

[ytdlp]
retries = 0
socket_timeout = 5
"""


class Daemon:
    """A `provenance daemon` subprocess whose log goes to a file."""

    def __init__(self, tmp_path: Path, db_url: str, name: str, config_text: str = DAEMON_CONFIG,
                 env: dict[str, str] | None = None) -> None:
        config = tmp_path / f"{name}.toml"
        config.write_text(config_text)
        self.log = tmp_path / f"{name}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from monitor.cli.main import main; main()", "--db", db_url, "--data-dir",
             str(tmp_path / "data"), "--config", str(config), "daemon"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log.open("w"), env={**os.environ, **(env or {})})

    def text(self) -> str:
        text = self.log.read_text()
        if self.process.poll() not in (None, 0):
            pytest.fail(f"the daemon exited with code {self.process.returncode}:\n{text}")
        return text

    def stop(self, timeout: float = 10) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def active_and_standby(tmp_path: Path, db_url: str) -> Iterator[tuple[Daemon, Daemon]]:
    """Two daemons on one database, once the first holds the lock and the second has reported standby; both are
    killed at the end."""
    first = Daemon(tmp_path, db_url, "first")
    second = None
    try:
        wait_for(lambda: "lock acquired" in first.text(), what="the first daemon to take the lock")
        second = Daemon(tmp_path, db_url, "second")
        wait_for(lambda: "standby" in second.text(), what="the second daemon to report standby")
        yield first, second
    finally:
        first.kill()
        if second:
            second.kill()


@pytest.fixture
def repo(database_url):
    database = open_database(database_url)
    yield SqlRepository(database)
    database.dispose()


@pytest.mark.slow
def test_daemon_polls_on_schedule_and_stops_cleanly_on_sigterm(tmp_path, database_url, repo, site, tiny_clips):
    watch = repo.add_watch(site.rss("/feed.rss", []), "rss", interval_seconds=2)
    daemon = Daemon(tmp_path, database_url, "daemon")
    try:
        wait_for(lambda: any(p.finished_at for p in repo.list_polls(watch.id)), what="a first poll")
        clip = site.file("/1.mp4", tiny_clips["testsrc2"])
        site.rss("/feed.rss", [("One", rfc822(datetime(2024, 3, 2, tzinfo=UTC)), clip)])
        post = wait_for(lambda: repo.get_post_by_archive_key(f"generic {clip}"), what="the added item")
        assert post.watch_id == watch.id

        assert daemon.stop(timeout=60) == 0  # SIGTERM ends it cleanly (a stuck daemon times out here)
    finally:
        daemon.kill()
    log = daemon.text()
    assert "lock acquired" in log and "lock released" in log and "daemon stopped" in log
    assert f"item stored watch={watch.id}" in log and "Traceback" not in log
    assert repo.acquire_lock("daemon", "test", 3600)  # released: free for anyone
    assert all(p.status != "running" for p in repo.list_polls(watch.id))


@pytest.mark.slow
def test_second_daemon_waits_as_standby_and_never_polls_at_the_same_time(tmp_path, database_url, repo, site):
    watch = repo.add_watch(site.rss("/feed.rss", []), "rss", interval_seconds=2)
    with active_and_standby(tmp_path, database_url) as (first, second):
        wait_for(lambda: len(repo.list_polls(watch.id)) >= 3, what="three polls")
        assert "poll started" not in second.text()

        assert first.stop() == 0
        wait_for(lambda: "lock acquired" in second.text(), what="the standby daemon to take over")
        polls_before = len(repo.list_polls(watch.id))
        wait_for(lambda: len(repo.list_polls(watch.id)) > polls_before, what="a poll by the second daemon")
        assert second.stop() == 0
    standby_log = second.text()
    assert standby_log.index("standby") < standby_log.index("lock acquired") < standby_log.index("poll started")
    polls = sorted(repo.list_polls(watch.id), key=lambda p: p.started_at)
    assert all(p.finished_at for p in polls)
    for earlier, later in zip(polls, polls[1:]):
        assert earlier.finished_at <= later.started_at, "two polls of one watch overlapped"


def test_tick_claims_each_due_watch_once_per_interval(workspace):
    repo = workspace.repository
    often = repo.add_watch("https://example.org/a.rss", "rss", interval_seconds=60)
    rarely = repo.add_watch("https://example.org/b.rss", "rss", interval_seconds=600)
    paused = repo.add_watch("https://example.org/c.rss", "rss", interval_seconds=60)
    repo.set_watch_enabled(paused.id, False)
    deferred = []
    context = JobContext(ws=workspace, source=None, defer=lambda name, **args: deferred.append((name, args)),
                         holder="test", durable=False, stop=threading.Event())

    assert tick(context) == [often.id, rarely.id]
    assert deferred == [("poll_watch", {"watch_id": often.id}), ("poll_watch", {"watch_id": rarely.id})]
    assert tick(context) == []  # claimed: no other tick (thread, daemon, machine) polls them this interval

    now = datetime.now(UTC)
    next_often = repo.get_watch(often.id).next_poll_at
    assert now + timedelta(seconds=50) < next_often <= now + timedelta(seconds=60 + 6)  # jitter: a tenth at most
    assert [w.id for w in repo.claim_due_watches(now + timedelta(seconds=67))] == [often.id]


@pytest.mark.parametrize("db_backend", ["sqlite"])  # the embedded runner
def test_standby_takes_over_at_once_when_the_active_daemon_is_killed(tmp_path, database_url, repo, site):
    watch = repo.add_watch(site.rss("/feed.rss", []), "rss", interval_seconds=2)
    with active_and_standby(tmp_path, database_url) as (first, second):
        first.kill()  # SIGKILL: no lock release, its heartbeat just stops
        killed_at = time.monotonic()
        wait_for(lambda: "lock acquired" in second.text(), what="the standby daemon to take over")
        print(f"standby took over {time.monotonic() - killed_at:.1f} s after kill -9")  # lock_stale_seconds is 30
        polls_before = len(repo.list_polls(watch.id))
        wait_for(lambda: len(repo.list_polls(watch.id)) > polls_before, what="a poll by the second daemon")
        assert second.stop() == 0
    assert "took the lock over from a dead daemon" in second.text()
    assert all(p.status in ("ok", "interrupted") for p in repo.list_polls(watch.id))


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_a_hanging_site_does_not_stall_the_other_watches(tmp_path, database_url, repo, site, tiny_clips):
    from tests.monitor.test_queue import slow_clip

    hanging, release = threading.Event(), threading.Event()
    stuck = slow_clip(site, "/stuck.mp4", tiny_clips["life"].read_bytes(), delay=0.0, started=hanging, hold=release)
    other = Site(site.server)  # the same host: the per-site limit must not hold it up either (limit 2 here)
    fine = other.file("/fine.mp4", tiny_clips["testsrc2"])
    slow = repo.add_watch(site.rss("/stuck.rss", [("stuck", rfc822(datetime(2024, 3, 1, tzinfo=UTC)), stuck)]),
                          "rss", interval_seconds=3600)
    repo.add_watch(other.rss("/fine.rss", [("fine", rfc822(datetime(2024, 3, 2, tzinfo=UTC)), fine)]), "rss",
                   interval_seconds=3600)
    daemon = Daemon(tmp_path, database_url, "daemon", DAEMON_CONFIG + "concurrent_per_domain = 2\n")
    try:
        assert hanging.wait(60), "the hanging download never started"
        wait_for(lambda: repo.get_post_by_archive_key(f"generic {fine}"), timeout=60,
                 what="the other watch's item while the first one hangs")
        assert repo.get_post_by_archive_key(f"generic {stuck}") is None
        # the hanging one ends by itself: socket_timeout, recorded as failed, retried on a later poll
        state = wait_for(lambda: repo.get_watch_item(slow.id, f"generic {stuck}"), timeout=60,
                         what="the hanging item to time out")
        assert state.status == "failed" and "socket_timeout" in state.last_error
        assert daemon.stop(timeout=60) == 0
    finally:
        release.set()
        daemon.kill()
