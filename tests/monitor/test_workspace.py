"""A long-lived workspace (the daemon's) sees media that other processes store."""

from __future__ import annotations

from dataclasses import replace

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.config import load_config
from monitor.jobs.earliest import find_earliest
from monitor.analysis import analyse_file
from monitor.jobs.ingest import ingest_analysed, ingest_file
from monitor.workspace import Workspace
from storage.records import NewPost


@pytest.mark.slow
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


def test_ingesting_the_same_bytes_from_the_same_url_again_adds_nothing(tmp_path, database_url, sample_clips):
    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        post = NewPost(media_id=0, url="https://example.org/source")
        first = ingest_file(ws, sample_clips.source, post)
        again = ingest_file(ws, sample_clips.source, post)
        elsewhere = ingest_file(ws, sample_clips.source, NewPost(media_id=0, url="https://example.org/repost"))
        assert first.new_post and not again.new_post and again.post.id == first.post.id
        assert elsewhere.new_post and elsewhere.media.id == first.media.id  # another appearance of the bytes
        assert [p.url for p in ws.repository.list_posts()] == ["https://example.org/source",
                                                               "https://example.org/repost"]
    finally:
        ws.close()


def _ingest_at_the_same_moment(args) -> int:
    data_dir, database_url, path, url, barrier = args
    ws = Workspace.open(load_config(None, data_dir, database_url))
    try:
        analysed = analyse_file(path, ws.settings, exif=ws.exif)  # the slow part, done before meeting
        barrier.wait(timeout=120)
        return ingest_analysed(ws, analysed, NewPost(media_id=0, url=url)).media.id
    finally:
        ws.close()


@pytest.mark.slow
def test_an_original_and_its_copy_ingested_at_the_same_moment_are_matched(tmp_path, database_url, sample_clips):
    """Two processes store related videos at once: the one that commits second matches the first."""
    import multiprocessing

    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))  # migrates before the race
    ws.close()
    context = multiprocessing.get_context("spawn")
    for attempt, copy in enumerate(("mirror", "letterbox")):
        barrier = context.Manager().Barrier(2)
        jobs = [(tmp_path / "data", database_url, path, f"https://example.org/{attempt}/{name}", barrier)
                for name, path in (("source", sample_clips.source), (copy, sample_clips.edits[copy]))]
        with context.Pool(2) as pool:
            source_id, copy_id = pool.map(_ingest_at_the_same_moment, jobs)
        ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
        try:
            linked = {r.stored_media_id for r in ws.repository.matches_for_media(copy_id, ws.settings_id)}
            assert source_id in linked, f"attempt {attempt}: the match between the two was not stored"
            report = find_earliest(ws, sample_clips.edits[copy])
            assert {a.post.url for a in report.appearances} >= {j[3] for j in jobs}
        finally:
            ws.close()


@pytest.mark.slow
def test_the_frame_indexes_live_on_disk_and_are_rebuilt_when_they_do_not_match(tmp_path, database_url,
                                                                                 sample_clips):
    """A new process opens the segment files instead of reading every frame; a damaged index, or one
    left by another database at the same URL, is rebuilt from the database, which is the source of truth."""
    config = load_config(None, tmp_path / "data", database_url)
    ws = Workspace.open(config)
    try:
        ingest_file(ws, sample_clips.source, NewPost(media_id=0, url="https://example.org/source"))
        ws.indexes()
        directory = ws.index_dir("picture")
        stored = len(ws.indexes()["picture"])
        assert stored > 0 and any(directory.glob("seg-*"))
    finally:
        ws.close()

    def found_by_a_fresh_process() -> list[str]:
        fresh = Workspace.open(config)
        try:
            return [a.post.url for a in find_earliest(fresh, sample_clips.edits["mirror"]).appearances]
        finally:
            fresh.close()

    assert found_by_a_fresh_process() == ["https://example.org/source"]
    for segment in directory.glob("seg-*"):  # damage the files
        segment.write_bytes(segment.read_bytes()[:100])
    assert found_by_a_fresh_process() == ["https://example.org/source"]

    result = CliRunner().invoke(cli, ["--db", database_url, "--data-dir", str(tmp_path / "data"),
                                      "index", "check", "--deep"])
    assert result.exit_code == 0, result.output
    assert f"picture: ok ({stored:,} rows)" in result.output


def test_a_query_with_nothing_new_reads_no_frame_rows(tmp_path, database_url, sample_clips):
    """Every index is caught up to the last frame row, whether or not those rows have its column: the motion
    index (still shots only) used to read every frame row stored since the last still shot, at each query."""
    import sqlalchemy as sa

    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        for n, clip in enumerate([sample_clips.source, sample_clips.unrelated[-1]]):
            ingest_file(ws, clip, NewPost(media_id=0, url=f"https://example.org/{n}"))
        with ws.repository.database.engine.connect() as connection:
            last_motion = connection.execute(sa.text("SELECT max(id) FROM frames WHERE motion_hash IS NOT NULL")
                                             ).scalar() or 0
        last = ws.repository.last_frame_row_id(ws.settings_id)
        assert last_motion < last  # the last clips have no still shot: the motion column lags
        indexes = ws.indexes()
        assert {name: index.high_water_mark for name, index in indexes.items()} == dict.fromkeys(indexes, last)
        statements = []
        sa.event.listen(ws.repository.database.engine, "before_cursor_execute",
                        lambda conn, cursor, statement, *rest: statements.append(statement))
        ws.indexes()
        reads = [s for s in statements if "FROM frames" in s]
        assert len(reads) == 1 and "max(frames.id)" in reads[0], reads  # the last row's id, nothing else
        ingest_file(ws, sample_clips.edits["mirror"], NewPost(media_id=0, url="https://example.org/mirror"))
        statements.clear()
        ws.indexes()
        reads = [s for s in statements if "FROM frames" in s]
        assert len(reads) == 1 + len(indexes), reads  # then each index reads the new rows once
        assert ws.indexes()["motion"].high_water_mark == ws.repository.last_frame_row_id(ws.settings_id) > last
    finally:
        ws.close()


def test_an_index_ahead_of_its_database_is_rebuilt(tmp_path, sample_clips):
    """The database was replaced by an older or another one at the same place: the index's last row is
    not in it, so the index is made again from what the database holds."""
    data = tmp_path / "data"
    ws = Workspace.open(load_config(None, data, None))
    try:
        for name in ("source", "mirror"):
            path = sample_clips.source if name == "source" else sample_clips.edits["mirror"]
            ingest_file(ws, path, NewPost(media_id=0, url=f"https://example.org/{name}"))
        ws.indexes()
    finally:
        ws.close()
    (data / "provenance.db").unlink()
    ws = Workspace.open(load_config(None, data, None))
    try:
        ingest_file(ws, sample_clips.unrelated[0], NewPost(media_id=0, url="https://example.org/other"))
        assert find_earliest(ws, sample_clips.edits["letterbox"]).appearances == []
        assert {int(m) for m in ws.indexes()["picture"].media_ids()} == {1}
    finally:
        ws.close()


def test_viral_footage_is_found_through_the_copies_its_stored_matches_name(tmp_path, database_url):
    """`find_matches` hands the matcher the store's stored matches (`SqlRepository.linked_media`): copies of the
    footage too far from the query to be aligned are no crowd for the copy it matches, once the store has matched
    them to it (as ingest does).  The store is the one of
    `tests/fingerprints/test_specificity.py::test_copies_the_store_knows_of_are_no_crowd_for_their_footage`."""
    import numpy as np

    from monitor.jobs.ingest import frame_rows
    from monitor.jobs.matching import find_matches, to_new_match
    from storage.records import NewMedia
    from tests.fingerprints.test_specificity import _family, _member

    rng = np.random.default_rng(3)
    footage = _family(rng)
    fingerprints = [_member(rng, footage, bits=1)] + [_member(rng, footage, bits=8) for _ in range(20)]
    query = _member(rng, [f.hashes for f in fingerprints[0].frames], bits=4)
    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        ids, linked = [], []
        for n, fp in enumerate(fingerprints):  # stored one by one, each matched first, as ingest does
            media = ws.repository.add_media(NewMedia(
                sha256=f"{n:064x}", size_bytes=1, store_path=f"media/{n}.mp4", duration=fp.duration, width=320,
                height=180, fps=2.0, video_codec="h264", audio_codec=None, container_format="mp4",
                container_created_raw=None, container_created_at=None))
            matches = find_matches(ws, fp, {media.id})
            ws.repository.add_fingerprint(media.id, ws.settings_id, frame_rows(fp), len(fp.frames), {})
            for m in matches:
                ws.repository.save_match(to_new_match(media.id, ws.settings_id, m))
            ids.append(media.id)
            linked.append(bool(matches))
        assert all(linked[1:]), linked  # every copy was matched to some earlier one as it was stored
        assert [m.media_id for m in find_matches(ws, query, set())] == [ids[0]]
        ws.match_params = replace(ws.match_params, known_copies=0)
        assert find_matches(ws, query, set()) == []  # the 20 copies are the crowd of the first
    finally:
        ws.close()
