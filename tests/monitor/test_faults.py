"""Faults: `kill -9` at every step of an ingest, and two `run-once` racing, on SQLite and PostgreSQL.

A real `provenance run-once` subprocess is killed with SIGKILL at a named
failpoint (`storage.failpoints`, PROVENANCE_FAILPOINT), one step after the
other, each time with a new item in a new watch (every step on SQLite; the
steps whose leftovers are rows on PostgreSQL too).  After each kill, what the next
start runs first (`monitor.jobs.recovery.recover`) must leave: no media
without a post, no file in the media store that no media row names, no
`.part` file, no work directory, no poll "running", no duplicate post.  A last
clean run then stores every item exactly once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.config import load_config
from monitor.jobs.recovery import recover
from monitor.workspace import Workspace
from storage.failpoints import ENV, ITEM_STEPS, POLL_STEPS
from tests.monitor.test_poll import rfc822, site  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
FAULT_CONFIG = """
[ytdlp]
retries = 0
socket_timeout = 10
concurrent_per_domain = 4

[poll]
retry_base_seconds = 3600

[daemon]
workers = 3
orphan_grace_seconds = 0
"""


def fault_workspace(tmp_path: Path, db_url: str) -> Workspace:
    """The workspace the subprocesses use, with the same settings."""
    config = tmp_path / "faults.toml"
    config.write_text(FAULT_CONFIG)
    return Workspace.open(load_config(config, tmp_path / "data", db_url))


def provenance(tmp_path: Path, db_url: str, *args: str, failpoint: str | None = None,
               wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    config = tmp_path / "faults.toml"
    env = {**os.environ, ENV: failpoint} if failpoint else {k: v for k, v in os.environ.items() if k != ENV}
    command = [sys.executable, "-c", "from monitor.cli.main import main; main()", "--db", db_url,
               "--data-dir", str(tmp_path / "data"), "--config", str(config), *args]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def distinct_clip(clip: Path, n: int) -> bytes:
    """The clip with a few bytes after its end: another SHA-256, the same playable video."""
    return clip.read_bytes() + f"padding-{n}".encode()


def assert_nothing_half_stored(ws: Workspace) -> None:
    repo = ws.repository
    with repo.database.engine.connect() as connection:
        lonely = connection.execute(sa.text(
            "SELECT id FROM media WHERE id NOT IN (SELECT media_id FROM posts)")).scalars().all()
        duplicates = connection.execute(sa.text(
            "SELECT url FROM posts GROUP BY url, watch_id HAVING count(*) > 1")).scalars().all()
    assert lonely == [], "media without a post"
    assert duplicates == [], "duplicate posts"
    files = {p.relative_to(ws.config.data_dir).as_posix() for p in (ws.config.data_dir / "media").rglob("*")
             if p.is_file()}
    assert not [f for f in files if f.endswith(".part")], "partial copies left"
    assert files == {m.store_path for m in repo.list_media()}, "files no media row names"
    work = ws.config.data_dir / "work"
    assert not work.exists() or not any(work.iterdir()), list(work.iterdir())
    assert repo.running_polls() == [], "a poll left running"


# Steps where what is left behind is rows: killed on both databases.  The others leave only files (work
# directories, `.part` copies, unnamed stored files), whatever the database: killed on SQLite only, to keep
# the suite fast (each kill is a fresh `provenance` process).
DATABASE_STEPS = ("poll-started", "before-commit", "after-commit")


@pytest.mark.slow
def test_kill_at_every_step_leaves_nothing_half_stored(tmp_path, database_url, db_backend, site, tiny_clips):
    steps = POLL_STEPS + ITEM_STEPS if db_backend == "sqlite" else DATABASE_STEPS
    assert set(DATABASE_STEPS) <= set(POLL_STEPS + ITEM_STEPS)
    ws = fault_workspace(tmp_path, database_url)
    try:
        urls = []
        for n, step in enumerate(steps):
            # a watch of its own per step: each killed run works on one new item
            url = site.file(f"/{n}.mp4", distinct_clip(tiny_clips["testsrc2"], n))
            urls.append(url)
            watch = ws.repository.add_watch(site.rss(f"/{n}.rss", [(f"item {n}", rfc822(datetime(
                2024, 3, 1, n, tzinfo=UTC)), url)]), "rss")

            killed = provenance(tmp_path, database_url, "run-once", "--watch", str(watch.id), failpoint=step)

            assert killed.returncode == -9, f"{step}: not killed ({killed.returncode}):\n{killed.stderr}"
            report = recover(ws)  # what the next start does first
            assert_nothing_half_stored(ws)
            assert bool(report.polls_interrupted) == (step != "after-item-recorded"), step  # that one had ended
            assert ws.repository.get_post_by_archive_key(f"generic {url}") is None or step in (
                "after-commit", "after-item-recorded"), step

        clean = provenance(tmp_path, database_url, "run-once", "--json")

        assert clean.returncode == 0, clean.stderr
        summaries = json.loads(clean.stdout)
        assert [s["items_failed"] for s in summaries] == [0] * len(urls), [s["errors"] for s in summaries]
        assert_nothing_half_stored(ws)
        assert sorted(p.url for p in ws.repository.list_posts()) == sorted(urls)  # every item, once
        assert {p.status for p in ws.repository.list_polls()} <= {"ok", "interrupted"}
    finally:
        ws.close()


@pytest.mark.slow
def test_two_run_once_at_once_store_each_item_once_and_fail_none(tmp_path, database_url, site, tiny_clips):
    clips = list(tiny_clips.values())
    items = [(f"item {n}", rfc822(datetime(2024, 3, 2, n, tzinfo=UTC)),
              site.file(f"/race/{n}.mp4", distinct_clip(clips[n % len(clips)], n))) for n in range(4)]
    ws = fault_workspace(tmp_path, database_url)
    try:
        ws.repository.add_watch(site.rss("/race.rss", items), "rss")
        ws.repository.add_watch(site.rss("/race-copy.rss", items), "rss")  # the same items through a 2nd watch
        racers = [provenance(tmp_path, database_url, "run-once", "--json", wait=False) for _ in range(2)]
        outputs = [racer.communicate(timeout=300) for racer in racers]
        for racer, (out, err) in zip(racers, outputs):
            assert racer.returncode == 0, err
        summaries = [s for out, _ in outputs for s in json.loads(out)]
        assert [s["items_failed"] for s in summaries] == [0, 0, 0, 0], [s["errors"] for s in summaries]
        assert sum(s["items_new"] for s in summaries) == len(items)  # each stored once, by one of them
        posts = ws.repository.list_posts()
        assert sorted(p.url for p in posts) == sorted(url for *_, url in items)
        assert all(p.items_failed == 0 for p in ws.repository.list_polls())
        assert_nothing_half_stored(ws)
    finally:
        ws.close()
