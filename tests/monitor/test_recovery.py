"""Recovery removes only what dead processes left; the site pool never lets a slow site hold up the rest."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from monitor.jobs.recovery import dead_poll_reason, recover
from monitor.sitepool import SitePool
from storage.processes import file_tag, holder_id, hostname
from storage.records import PollRecord
from tests.monitor.test_poll import workspace  # noqa: F401 (fixture)



def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_recover_removes_dead_processes_leftovers_and_keeps_live_ones(workspace, tmp_path):
    ws, repo = workspace, workspace.repository
    ws.config.raw["daemon"]["orphan_grace_seconds"] = 60
    dead = f"{hostname()}+{dead_pid()}+"
    work = ws.config.data_dir / "work"
    (work / f"item-{dead}abc" / "download-x").mkdir(parents=True)
    (work / f"item-{file_tag()}mine").mkdir()
    shard = ws.config.data_dir / "media" / "ab"
    shard.mkdir(parents=True)
    (shard / f".incoming-{dead}1.part").write_bytes(b"half")
    (shard / f".incoming-{file_tag()}2.part").write_bytes(b"being written")
    old_orphan, new_orphan = shard / ("ab" + "0" * 62 + ".mp4"), shard / ("ab" + "1" * 62 + ".mp4")
    old_orphan.write_bytes(b"x")
    new_orphan.write_bytes(b"y")
    hour_ago = time.time() - 3600
    os.utime(old_orphan, (hour_ago, hour_ago))
    watch = repo.add_watch("https://example.org/a.rss", "rss")
    dead_poll = repo.start_poll(watch.id, f"{hostname()}:{dead_pid()}:x")
    live_poll = repo.start_poll(watch.id, holder_id())

    report = recover(ws)

    assert report.workdirs == [f"work/item-{dead}abc"]
    assert [p.split("/")[-1] for p in report.partial] == [f".incoming-{dead}1.part"]
    assert report.orphans == [f"media/ab/{old_orphan.name}"]  # the new one may be an ingest about to commit
    assert report.polls_interrupted == [dead_poll.id]
    assert repo.get_poll(dead_poll.id).status == "interrupted"
    assert "died" in repo.get_poll(dead_poll.id).errors[-1]["error"]
    assert repo.get_poll(live_poll.id).status == "running"
    assert sorted(p.name for p in work.iterdir()) == [f"item-{file_tag()}mine"]
    assert new_orphan.exists() and (shard / f".incoming-{file_tag()}2.part").exists()


def test_polls_of_other_hosts_die_by_silence():
    now = datetime.now(UTC)
    poll = PollRecord(id=1, watch_id=1, started_at=now - timedelta(minutes=10), finished_at=None, items_seen=0,
                      items_new=0, items_failed=0, errors=[], status="running", holder="elsewhere:1:x",
                      heartbeat_at=now - timedelta(seconds=5))
    assert dead_poll_reason(poll, now, stale_seconds=120) is None
    assert "fell silent" in dead_poll_reason(poll, now + timedelta(seconds=200), stale_seconds=120)


def test_site_pool_runs_other_sites_while_one_is_slow():
    pool = SitePool(workers=2, per_site=1)
    release = threading.Event()
    running = {"slow": 0, "peak": 0}
    lock = threading.Lock()

    def slow() -> None:
        with lock:
            running["slow"] += 1
            running["peak"] = max(running["peak"], running["slow"])
        release.wait(30)
        with lock:
            running["slow"] -= 1

    slow_jobs = [pool.submit("slow.example", slow) for _ in range(3)]
    fast_jobs = [pool.submit("fast.example", lambda: None) for _ in range(5)]
    for job in fast_jobs:
        job.result(timeout=30)  # done while the slow site still holds its only slot
    assert not any(job.done() for job in slow_jobs[1:])
    release.set()
    assert pool.join(timeout=30)
    assert running["peak"] == 1  # one at a time on the slow site
    pool.shutdown()
