"""The daemon's periodic index merge: a registered job at `[daemon] index_merge_seconds`, idempotent, and
seen by every other workspace on the same directory (the segments' own tests cover concurrent writers)."""

from __future__ import annotations

import threading

import numpy as np

from fingerprints.signals import stored_views
from monitor.config import load_config
from monitor.jobs.registry import JOBS, JobContext, periodic_jobs
from monitor.runners.base import JobRunner
from monitor.workspace import Workspace
from storage.records import FrameRow
from tests.storage.test_repository import new_media

SEGMENTS = 9


def _fingerprint(ws: Workspace, n: int) -> None:
    media = ws.repository.add_media(new_media(n))
    rng = np.random.default_rng(n)
    columns = [view.column for view in stored_views()]
    rows = [FrameRow(index=i, timestamp=i * 0.5, hashes={c: int(rng.integers(0, 1 << 63)) for c in columns},
                     is_scene_cut=i == 0, quality=10.0) for i in range(20)]
    ws.repository.add_fingerprint(media.id, ws.settings_id, rows, frames_decoded=20, details={})


def _context(ws: Workspace) -> JobContext:
    return JobContext(ws=ws, source=None, defer=lambda name, **args: None, holder="test", durable=False,
                      stop=threading.Event())


def test_the_daemon_merges_small_segments_periodically(database_url, tmp_path):
    job = JOBS["merge_index"]
    assert job in periodic_jobs() and job.every == "index_merge_seconds" and job.lock() == "merge-index"
    config = tmp_path / "config.toml"
    config.write_text("[daemon]\nindex_max_segments = 2\n")  # the due merges alone (the next test: the rest)
    ws = Workspace.open(load_config(str(config), tmp_path / "data", database_url))
    try:
        for index in ws.indexes().values():
            index.auto_merge_rows = 0  # as if every append were past the size appends merge themselves
        for n in range(SEGMENTS):
            _fingerprint(ws, n + 1)
            ws.indexes()  # catches up: one new segment per view
        probe = {name: idx.segment_sizes() for name, idx in ws.indexes().items()}
        assert all(len(sizes) == SEGMENTS for sizes in probe.values()), probe
        everything = np.array([0], dtype=np.uint64)  # within 64 bits of every hash: every live row
        before = {name: _hits(idx.query(everything, 64)) for name, idx in ws.indexes().items()}
        assert all(len(hits) == SEGMENTS * 20 for hits in before.values())

        merged = job.run(_context(ws))

        assert merged == len(probe) * 8  # eight of the nine one-size segments become one, per view
        assert all(len(idx.segment_sizes()) == 2 for idx in ws.indexes().values())
        assert job.run(_context(ws)) == 0  # nothing due: nothing written
        assert {name: _hits(idx.query(everything, 64)) for name, idx in ws.indexes().items()} == before
        other = Workspace.open(ws.config)  # another process's view of the same directory sees the merge
        try:
            assert all(len(idx.segment_sizes()) == 2 for idx in other.indexes().values())
        finally:
            other.close()
    finally:
        ws.close()


def test_more_segments_than_index_max_segments_and_the_newest_become_one(database_url, tmp_path):
    """Seven one-size segments: no merge is due (eight make one), but each costs every query a probe."""
    config = tmp_path / "config.toml"
    config.write_text("[daemon]\nindex_max_segments = 3\n")
    ws = Workspace.open(load_config(str(config), tmp_path / "data", database_url))
    try:
        for index in ws.indexes().values():
            index.auto_merge_rows = 0
        for n in range(7):
            _fingerprint(ws, n + 1)
            ws.indexes()
        everything = np.array([0], dtype=np.uint64)
        before = {name: _hits(idx.query(everything, 64)) for name, idx in ws.indexes().items()}
        assert all(idx.merge() == 0 for idx in ws.indexes().values())  # nothing due

        assert JOBS["merge_index"].run(_context(ws)) == len(before) * 5  # the newest five make one: 3 left

        assert all(idx.segment_sizes() == [20, 20, 100] for idx in ws.indexes().values())
        assert {name: _hits(idx.query(everything, 64)) for name, idx in ws.indexes().items()} == before
        assert JOBS["merge_index"].run(_context(ws)) == 0
    finally:
        ws.close()


def _hits(hits) -> list[tuple]:
    return sorted(zip(*(np.asarray(getattr(hits, f)).tolist() for f in hits.__dataclass_fields__)))


class _Recorder(JobRunner):
    def __init__(self) -> None:
        self.scheduled: dict[str, float] = {}

    def defer(self, job_name, **args) -> None: ...

    def schedule(self, job_name, every_seconds) -> None:
        self.scheduled[job_name] = every_seconds

    def run(self, stop) -> None: ...


def test_index_merge_seconds_sets_the_period_and_0_turns_it_off(tmp_path):
    config = tmp_path / "config.toml"
    for value, expected in ((900, 900.0), (0, None)):
        config.write_text(f"[daemon]\nindex_merge_seconds = {value}\n")
        runner = _Recorder()
        runner.schedule_periodic_jobs(load_config(str(config), tmp_path / "data", None))
        assert runner.scheduled.get("merge_index") == expected
        assert runner.scheduled["revisit"] == 600.0
