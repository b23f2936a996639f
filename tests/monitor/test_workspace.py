"""A long-lived workspace (the daemon's) sees media that other processes store."""

from __future__ import annotations

from monitor.config import load_config
from monitor.jobs.earliest import find_earliest
from monitor.jobs.ingest import ingest_file
from monitor.workspace import Workspace
from storage.records import NewPost


def test_index_picks_up_media_stored_by_another_workspace(tmp_path, database_url, sample_clips):
    config = load_config(None, tmp_path / "data", database_url)
    daemon_side, other = Workspace.open(config), Workspace.open(config)
    try:
        assert find_earliest(daemon_side, sample_clips.edits["mirror"]).appearances == []  # index loaded, empty
        ingest_file(other, sample_clips.source, NewPost(media_id=0, url="https://example.org/source"))
        report = find_earliest(daemon_side, sample_clips.edits["mirror"])
        assert [a.post.url for a in report.appearances] == ["https://example.org/source"]
        assert report.appearances[0].match.mirrored
    finally:
        daemon_side.close()
        other.close()


def test_still_camera_takes_are_told_apart_through_the_store(tmp_path, database_url, still_camera_clips):
    """Moving-part hashes go through the database and both ways of indexing them: built from the frame
    table by a workspace opened later, and added one media at a time to a workspace already loaded."""
    config = load_config(None, tmp_path / "data", database_url)
    loaded = Workspace.open(config)
    try:
        assert find_earliest(loaded, still_camera_clips["B-banner"]).appearances == []  # index loaded, empty
        for name in ("A", "B"):
            ingest_file(loaded, still_camera_clips[name], NewPost(media_id=0, url=f"https://example.org/{name}"))
        fresh = Workspace.open(config)
        try:
            for ws in (loaded, fresh):
                report = find_earliest(ws, still_camera_clips["B-banner"])
                assert [a.post.url for a in report.appearances] == ["https://example.org/B"]
                assert report.appearances[0].match.motion_frames >= 5
        finally:
            fresh.close()
    finally:
        loaded.close()
