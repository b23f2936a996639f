"""Acceptance (issue 11.2): one hostile feed, polled by a real `provenance run-once` on SQLite.

The feed holds a drip-fed item, a gzip bomb, a tiny but three-hour video, a
still image served as video/mp4, and five normal clips.  The poll must store
the five clips, record the four others as failed with their kind, finish,
and keep every process it starts under 500 MB of resident memory (measured
with getrusage over the whole process tree, yt-dlp's process and ffmpeg
included).  Small limits in the run's config keep it short; that the drip
really would have taken minutes is set up by its rate.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.hostile_fixtures import measured_run

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[ytdlp]
retries = 0
socket_timeout = 5

[limits]
item_deadline_seconds = 5
max_download_bytes = "8M"
download_memory_mb = 256
max_duration_seconds = 600
decode_memory_mb = 1024
"""


@pytest.mark.slow
def test_run_once_stores_the_clips_and_records_the_hostile_items(tmp_path, http_server, hostile, hostile_media,
                                                                tiny_clips):
    clips = {name: http_server.add_file(f"/accept/{name}.mp4", path, "video/mp4") for name, path in tiny_clips.items()}
    drip_data = tiny_clips["testsrc2"].read_bytes()
    hostile_items = {
        "drip": hostile.drip("/accept/drip.mp4", drip_data, rate=len(drip_data) // 600),  # ten minutes
        "bomb": hostile.bomb("/accept/bomb.mp4", 2**30, "video/mp4"),
        "three hours": http_server.add_file("/accept/long.mp4", hostile_media.long_tiny, "video/mp4"),
        "still image": http_server.add_file("/accept/still.mp4", hostile_media.still_png, "video/mp4"),
    }
    feed = hostile.feed("/accept/feed.rss", [*((k, v) for k, v in hostile_items.items()), *clips.items()])
    config = tmp_path / "config.toml"
    config.write_text(CONFIG)
    base = [sys.executable, "-m", "monitor.cli", "--data-dir", str(tmp_path / "data"), "--config", str(config)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PROVENANCE_NO_SERVER": "1"}
    assert measured_run([*base, "watch", "add", feed], env=env, cwd=ROOT)["code"] == 0

    run = measured_run([*base, "run-once", "--json"], env=env, cwd=ROOT, timeout=240)

    assert run["code"] == 0, run["output"]
    (summary,) = json.loads(run["output"][run["output"].index("[\n"):])
    assert (summary["items_seen"], summary["items_new"], summary["items_failed"]) == (9, 5, 4)
    kinds = {error["url"]: error["kind"] for error in summary["errors"]}
    assert kinds == {hostile_items["drip"]: "too-slow", hostile_items["bomb"]: "too-large",
                     hostile_items["three hours"]: "too-long", hostile_items["still image"]: "not-a-video"}
    assert all(error["error"] and "\n" not in error["error"] for error in summary["errors"])
    assert run["maxrss_mb"] < 500, run["maxrss_mb"]
    stored = measured_run([*base, "polls", "--json"], env=env, cwd=ROOT)
    (poll,) = json.loads(stored["output"])
    assert {e["url"]: e["kind"] for e in poll["errors"]} == kinds  # the record keeps the kinds
