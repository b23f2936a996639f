"""Several `provenance daemon` processes on one PostgreSQL database share the work through the job queue.

Real daemons (subprocesses), a real PostgreSQL server and the local HTTP
server, whose clips answer slowly so that work overlaps.  Tests wait on
events with generous deadlines; they never assert on speed.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.monitor.test_daemon import Daemon, repo, wait_for  # noqa: F401 (fixture)
from tests.monitor.test_poll import Site, rfc822, site  # noqa: F401 (fixtures)

pytestmark = pytest.mark.parametrize("db_backend", ["postgresql"])

QUEUE_CONFIG = """
[ytdlp]
retries = 0
socket_timeout = 10
concurrent_per_domain = 4

[daemon]
runner = "queue"
workers = 2
jitter_seconds = 0
refresh_seconds = 1
lock_stale_seconds = 10
stalled_worker_seconds = 4
sweep_seconds = 2
"""
INTERVAL = 3  # seconds between polls of a watch


def slow_clip(site: Site, path: str, data: bytes, delay: float, started: threading.Event | None = None,
              hold: threading.Event | None = None) -> str:
    """A clip that answers after `delay` s; with `hold`, sends half and waits for it before the rest."""

    def handler(request) -> None:
        if started is not None:
            started.set()
        time.sleep(delay)
        request.send_response(200)
        request.send_header("Content-Type", "video/mp4")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        if request.command == "HEAD":
            return
        if hold is not None and not hold.is_set():
            request.wfile.write(data[: len(data) // 2])
            request.wfile.flush()
            hold.wait(120)
            return  # the first download is cut; a later one gets all of it
        request.wfile.write(data)

    return site.server.add_route(site.prefix + path, handler)


@pytest.mark.slow
def test_two_daemons_share_the_watches_and_store_every_item_once(tmp_path, database_url, repo, site, tiny_clips):
    clips = list(tiny_clips.values())
    watches, urls = [], []
    for w in range(4):
        items = []
        for k in range(2):  # eight items, each half a second: more than one daemon's two workers hold at once
            url = slow_clip(site, f"/w{w}/{k}.mp4", clips[(w + k) % len(clips)].read_bytes(), delay=0.5)
            items.append((f"item {w}.{k}", rfc822(datetime(2024, 3, 1, w, k, tzinfo=UTC)), url))
            urls.append(url)
        watches.append(repo.add_watch(site.rss(f"/w{w}.rss", items), "rss", interval_seconds=INTERVAL))
    began = datetime.now(UTC)
    daemons = [Daemon(tmp_path, database_url, name, QUEUE_CONFIG) for name in ("a", "b")]
    try:
        wait_for(lambda: len(repo.list_posts()) == len(urls), timeout=120, what="every item stored")
        print(f"stored after {(datetime.now(UTC) - began).total_seconds():.1f} s")
        wait_for(lambda: all(len(repo.list_polls(w.id)) >= 2 for w in watches), timeout=60,
                 what="two polls of every watch")
        for daemon in daemons:
            assert daemon.stop(timeout=60) == 0
        ended = datetime.now(UTC)
        print(f"stopped after {(ended - began).total_seconds():.1f} s")
    finally:
        for daemon in daemons:
            daemon.kill()
    posts = repo.list_posts()
    assert sorted(p.url for p in posts) == sorted(urls)  # every item once
    logs = [d.text() for d in daemons]
    assert all("item stored" in log for log in logs), "both daemons ingest items"
    assert not any("Traceback" in log for log in logs)
    for watch in watches:
        polls = sorted(repo.list_polls(watch.id), key=lambda p: p.started_at)
        # a poll whose items still wait in the (durable) queue stays "running" until a daemon takes them: a
        # later poll may hand over again an item an earlier one's job was still storing, and the daemons stop
        assert all(p.status in ("ok", "interrupted") or (p.status == "running" and p.items_pending)
                   for p in polls), [(p.status, p.items_pending) for p in polls]
        # once per interval, whichever daemon ticks: never more polls than intervals began while they ran
        assert len(polls) <= (ended - began) / timedelta(seconds=INTERVAL) + 1
        for earlier, later in zip(polls, polls[1:]):
            assert earlier.finished_at is None or earlier.started_at <= later.started_at
    items = {(i.watch_id, i.archive_key): i for w in watches for i in _items(repo, w.id)}
    assert all(i.status == "stored" for i in items.values())


def _items(repo, watch_id):
    return [repo.get_watch_item(watch_id, f"generic {url}") for url in
            [p.url for p in repo.list_posts() if p.watch_id == watch_id]]


@pytest.mark.slow
def test_a_killed_daemons_item_is_finished_by_the_other(tmp_path, database_url, repo, site, tiny_clips):
    started, hold = threading.Event(), threading.Event()
    url = slow_clip(site, "/slow.mp4", tiny_clips["testsrc2"].read_bytes(), delay=0.0, started=started, hold=hold)
    repo.add_watch(site.rss("/slow.rss", [("slow", rfc822(datetime(2024, 3, 1, tzinfo=UTC)), url)]), "rss",
                   interval_seconds=3600)
    first = Daemon(tmp_path, database_url, "first", QUEUE_CONFIG)
    second = None
    try:
        assert started.wait(60), "the first daemon never started the download"
        second = Daemon(tmp_path, database_url, "second", QUEUE_CONFIG)
        wait_for(lambda: "queue worker started" in second.text(), what="the second daemon to start")
        first.kill()  # SIGKILL, mid-download
        killed_at = time.monotonic()
        hold.set()
        post = wait_for(lambda: repo.get_post_by_archive_key(f"generic {url}"), timeout=60,
                        what="the other daemon to finish the item")
        takeover = time.monotonic() - killed_at
        print(f"takeover after kill -9: {takeover:.1f} s")
        wait_for(lambda: not any((tmp_path / "data" / "work").iterdir()), timeout=30,
                 what="the dead daemon's work directory to be swept")
        assert second.stop(timeout=60) == 0
    finally:
        first.kill()
        if second:
            second.kill()
    assert post.url == url and len(repo.list_posts()) == 1
    (poll,) = repo.list_polls()
    assert (poll.status, poll.items_new) == ("ok", 1)
    assert "job of a dead worker back in the queue" in second.text()
