"""Per-video signals through the store, on SQLite and PostgreSQL: stored at ingest with the frames, indexed
from a log on disk kept caught up with the database, matched as a route of their own and merged with the
frame-hash route, deleted with their media, backfilled for media fingerprinted before them.

Most tests use the scene-cut kind of `tests.cut_signal` (fast, real); the last ones the keypoints kind.
"""

from __future__ import annotations

import json

import pytest

from fingerprints.video import fingerprint_video
from monitor.config import load_config
from monitor.jobs.corrections import Actor, delete_media
from monitor.jobs.earliest import find_earliest
from monitor.jobs.ingest import ingest_file
from monitor.workspace import Workspace
from storage.records import NewPost
from tests.cut_signal import CUT_KIND
from tests.monitor.test_cli_core import Provenance


@pytest.fixture
def prov(tmp_path, database_url) -> Provenance:
    return Provenance(tmp_path / "data", database_url)


def _post(name: str) -> NewPost:
    return NewPost(media_id=0, url=f"https://example.org/{name}")


def _urls(report) -> list[str]:
    return [a.post.url for a in report.appearances]


@pytest.mark.slow
def test_a_copy_the_frame_hashes_miss_is_found_by_a_signal_route(prov, cut_kind, cut_clips):
    prov("ingest", str(cut_clips["original"]), "--url", "https://example.org/original",
         "--published-at", "2024-01-01T10:00:00Z")
    prov("ingest", str(cut_clips["unrelated"]), "--url", "https://example.org/unrelated")

    rotated = prov.json("find-earliest", str(cut_clips["rotated"]), "--format", "json")
    assert [a["url"] for a in rotated["appearances"]] == ["https://example.org/original"]
    match = rotated["earliest"]["match"]
    assert match["routes"] == [CUT_KIND]  # the frame hashes did not find it
    assert match["segments"][0]["stored_start"] == pytest.approx(match["segments"][0]["query_start"], abs=0.2)

    grey = prov.json("find-earliest", str(cut_clips["grey"]), "--format", "json")
    assert [a["url"] for a in grey["appearances"]] == ["https://example.org/original"]  # one match, two routes
    assert grey["earliest"]["match"]["routes"] == ["frames", CUT_KIND]
    assert grey["earliest"]["match"]["frames"]  # the better-covering frame match is kept whole

    markdown = prov("find-earliest", str(cut_clips["rotated"]), "--format", "markdown").stdout
    assert f"found by {CUT_KIND}" in markdown
    assert "found by" not in prov("find-earliest", str(cut_clips["grey"]), "--format", "markdown").stdout.replace(
        f"found by frames + {CUT_KIND}", "").replace(f"also found by {CUT_KIND}", "")  # (the confidence line)

    unrelated = prov.json("find-earliest", str(cut_clips["unrelated"]), "--format", "json")
    assert [a["match"]["exact"] for a in unrelated["appearances"]] == [True]


def test_signals_are_stored_at_ingest_and_matches_keep_their_routes(tmp_path, database_url, cut_kind, cut_clips):
    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        original = ingest_file(ws, cut_clips["original"], _post("original")).media
        blob = ws.repository.media_signal(original.id, ws.settings_id, CUT_KIND, cut_kind.version)
        computed = fingerprint_video(cut_clips["original"], ws.settings).signals[CUT_KIND]
        assert blob == cut_kind.to_bytes(computed) and len(computed) >= 5  # its five cuts, at least
        copy = ingest_file(ws, cut_clips["rotated"], _post("rotated"))
        assert [(v.media.id, v.match.routes) for v in copy.matches] == [(original.id, [CUT_KIND])]
        # the stored match, read back from either side, keeps its routes
        (from_original,) = find_earliest(ws, cut_clips["original"]).appearances[1:]
        assert from_original.post.url == "https://example.org/rotated"
        from monitor.jobs.matching import stored_match_views

        (seen,) = stored_match_views(ws, original.id)
        assert seen.match.routes == [CUT_KIND] and seen.media.id == copy.media.id
    finally:
        ws.close()


def test_signal_index_loads_from_its_log_and_catches_up(tmp_path, database_url, cut_kind, cut_clips, caplog):
    config = load_config(None, tmp_path / "data", database_url)
    loaded, other = Workspace.open(config), Workspace.open(config)
    try:
        assert len(loaded.signal_indexes()[CUT_KIND]) == 0  # loaded, empty
        ingest_file(other, cut_clips["original"], _post("original"))
        assert _urls(find_earliest(loaded, cut_clips["rotated"])) == ["https://example.org/original"]
        log_path = loaded.signal_indexes()[CUT_KIND].log.path
        assert log_path.is_file() and loaded.signal_indexes()[CUT_KIND].high_water_mark > 0

        fresh = Workspace.open(config)  # reads the log: no rebuild
        with caplog.at_level("WARNING", logger="provenance.workspace"):
            assert len(fresh.signal_indexes()[CUT_KIND]) == 1
        assert "rebuilding" not in caplog.text
        fresh.close()

        data = bytearray(log_path.read_bytes())
        data[-3] ^= 0xFF  # damage the last value
        log_path.write_bytes(bytes(data))
        damaged = Workspace.open(config)
        with caplog.at_level("WARNING", logger="provenance.workspace"):
            assert _urls(find_earliest(damaged, cut_clips["rotated"])) == ["https://example.org/original"]
        assert "rebuilding the test-cuts index" in caplog.text and "checksum" in caplog.text
        damaged.close()

        log_path.unlink()
        missing = Workspace.open(config)
        assert len(missing.signal_indexes()[CUT_KIND]) == 1  # rebuilt from the database
        missing.close()
    finally:
        loaded.close()
        other.close()


def test_a_deleted_media_leaves_every_signal_index(tmp_path, database_url, cut_kind, cut_clips):
    config = load_config(None, tmp_path / "data", database_url)
    deleting, watching = Workspace.open(config), Workspace.open(config)
    try:
        original = ingest_file(deleting, cut_clips["original"], _post("original")).media
        assert _urls(find_earliest(watching, cut_clips["rotated"])) == ["https://example.org/original"]
        delete_media(deleting, Actor("alice", "cli"), original.id, "asked to")
        assert deleting.repository.media_signal(original.id, deleting.settings_id, CUT_KIND, 1) is None
        for ws in (deleting, watching):  # the other process learns it from the log's tombstone
            assert len(ws.signal_indexes()[CUT_KIND]) == 0
            assert find_earliest(ws, cut_clips["rotated"]).appearances == []
        reopened = Workspace.open(config)
        assert len(reopened.signal_indexes()[CUT_KIND]) == 0
        reopened.close()
    finally:
        deleting.close()
        watching.close()


def test_media_fingerprinted_before_a_kind_existed_are_backfilled(prov, cut_clips, monkeypatch, no_media_signals):
    prov("ingest", str(cut_clips["original"]), "--url", "https://example.org/original")
    from fingerprints import signals
    from tests.cut_signal import SceneCutTimes

    monkeypatch.setitem(signals._REGISTRY, CUT_KIND, SceneCutTimes())  # the kind arrives with an upgrade
    before = prov("find-earliest", str(cut_clips["rotated"]), "--format", "json")
    assert json.loads(before.stdout)["appearances"] == []
    assert "run `provenance db backfill-signals`" in before.stderr

    summary = prov.json("db", "backfill-signals", "--json")
    assert (summary["todo"], summary["computed"], summary["failed"]) == (1, 1, [])
    assert summary["kinds"] == {CUT_KIND: 1}
    after = prov.json("find-earliest", str(cut_clips["rotated"]), "--format", "json")
    assert [a["url"] for a in after["appearances"]] == ["https://example.org/original"]
    assert prov.json("db", "backfill-signals", "--json")["todo"] == 0  # nothing left to do

    status = {row["view"]: row for row in prov.json("index", "status", "--json")}
    assert status[CUT_KIND]["rows"] == 1
    assert status[CUT_KIND]["high_water_mark"] == status[CUT_KIND]["database_last_row"] > 0
    assert f"{CUT_KIND}: ok (1 videos)" in prov("index", "check").stdout
    assert f"{CUT_KIND}: values of 1 videos" in prov("index", "rebuild", "--view", CUT_KIND).stdout


# --- the keypoints kind (`fingerprints.keypoints`) ----------------------------------------------------------


def test_keypoints_find_a_rotated_and_zoomed_copy_the_frame_hashes_miss(prov, cut_clips):
    original = prov.json("ingest", str(cut_clips["original"]), "--url", "https://example.org/original",
                         "--published-at", "2024-01-01T10:00:00Z", "--json")["media"]["id"]
    prov("ingest", str(cut_clips["unrelated"]), "--url", "https://example.org/unrelated")

    report = prov.json("find-earliest", str(cut_clips["rotated"]), "--format", "json")
    assert [a["url"] for a in report["appearances"]] == ["https://example.org/original"]
    match = report["earliest"]["match"]
    assert match["routes"] == ["keypoints"]  # the frame hashes did not find it
    assert match["transform"]["rotation"] == pytest.approx(-20, abs=3)  # query -> stored: turned back
    assert 1 / match["transform"]["scale_x"] == pytest.approx(1.35, abs=0.1)
    assert "rotated 20° clockwise" in match["edits"] and any(e.startswith("zoomed ×1.3") for e in match["edits"])

    out = prov.json("ingest", str(cut_clips["rotated"]), "--url", "https://example.org/rotated", "--json")
    assert [(m["media_id"], m["match"]["routes"]) for m in out["matches"]] == [(original, ["keypoints"])]
    status = {row["view"]: row for row in prov.json("index", "status", "--json")}
    assert status["keypoints"]["rows"] == 3  # every ingested video's keypoints


def test_a_stored_keypoint_match_is_turned_round_for_the_other_side(tmp_path, database_url, cut_clips):
    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        original = ingest_file(ws, cut_clips["original"], _post("original")).media
        copy = ingest_file(ws, cut_clips["rotated"], _post("rotated"))
        (found,) = copy.matches
        assert found.media.id == original.id and found.match.routes == ["keypoints"]
        from monitor.jobs.matching import stored_match_views

        (from_copy,) = stored_match_views(ws, copy.media.id)
        (from_original,) = stored_match_views(ws, original.id)
        assert from_copy.match.transform == found.match.transform
        assert from_original.match.transform["rotation"] == pytest.approx(-found.match.transform["rotation"])
        assert from_original.match.transform["scale_x"] == pytest.approx(1 / found.match.transform["scale_x"],
                                                                         abs=0.01)
        assert from_original.match.transform["query_w"] == found.match.transform["stored_w"]
        assert from_original.match.routes == ["keypoints"]
    finally:
        ws.close()


def test_a_damaged_stored_value_is_left_out_and_the_others_still_match(tmp_path, database_url, cut_kind, cut_clips,
                                                                      caplog):
    from storage.records import SignalValue
    from tests.storage.test_repository import new_media

    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        ingest_file(ws, cut_clips["original"], _post("original"))
        damaged = ws.repository.add_media(new_media(77)).id
        ws.repository.add_fingerprint(damaged, ws.settings_id, [], 1, {}, signals=[SignalValue(CUT_KIND, 1, b"1234567")])
        with caplog.at_level("WARNING", logger="provenance.workspace"):
            assert _urls(find_earliest(ws, cut_clips["rotated"])) == ["https://example.org/original"]
        assert f"test-cuts value of media {damaged} left out of its index" in caplog.text
    finally:
        ws.close()
