"""`provenance calibrate`: edited copies of stored footage are matched, scored, and nothing is stored."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.synth import transforms as T
from monitor.jobs.calibrate import (FAMILIES, SWEEP, CalibrationError, CopyOutcome, Source, calibrate, parse_families,
                               recipe_for, summarise)
from monitor.jobs.ingest import ingest_file
from monitor.cli.calibrate import FAMILY_NAMES
from monitor.config import load_config
from monitor.workspace import Workspace
from storage.models import Base
from storage.records import NewPost
from tests.monitor.test_cli_core import Provenance
from tests.store_fixtures import copy_store


@pytest.fixture
def store(tmp_path, source_and_two_others_store, monkeypatch) -> Provenance:
    """A SQLite store holding the source clip and two unrelated clips (12 s each); copies are made of 6 s of each."""
    monkeypatch.setattr("monitor.jobs.calibrate.WINDOW_SECONDS", 6.0)
    return Provenance(copy_store(source_and_two_others_store, tmp_path / "data"), None)


@pytest.fixture
def workspace(store):
    ws = Workspace.open(load_config(None, store.data_dir, None))
    yield ws
    ws.close()


def _snapshot(ws: Workspace) -> dict:
    """Row counts of every table and every file under the data dir (with size and mtime)."""
    with ws.repository.database.engine.connect() as connection:
        counts = {t.name: connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in Base.metadata.sorted_tables}
    files = {str(p.relative_to(ws.store.data_dir)): (p.stat().st_size, p.stat().st_mtime_ns)
             for p in sorted((ws.store.data_dir / "media").rglob("*")) if p.is_file()}
    return {"rows": counts, "files": files}


@pytest.mark.slow
def test_flips_and_reencodes_find_their_source_and_nothing_is_stored(workspace):
    before = _snapshot(workspace)
    assert before["rows"]["media"] == 3 and len(before["files"]) == 3
    calls = []
    report = calibrate(workspace, sample=2, families=["flip", "reencode"], seed=0,
                       progress=lambda done, total, label: calls.append((done, total, label)))

    assert _snapshot(workspace) == before
    assert len(report.sources) == 2 and report.stored_videos == 3
    assert [f.family for f in report.families] == ["reencode", "flip"]  # suite order
    configured = workspace.match_params.max_distance
    assert report.configured_max_distance == configured
    for family in report.families:
        assert (family.copies, family.failed) == (2, 0), family.family
        assert family.configured.max_distance == configured
        assert family.configured.recall == 1.0 and family.configured.false_matches == 0, family.family
        assert [s.max_distance for s in family.sweep] == sorted(set(SWEEP) | {configured})
    for copy in report.copies:
        assert copy.error is None and copy.path is None  # nothing kept without a workdir
        assert copy.found[configured] and copy.false[configured] == []
        assert 0 < copy.query_coverage <= 1
    overall = report.overall
    assert (overall.copies, overall.configured.found) == (4, 4)
    assert overall.configured.precision == 1.0
    # the configured threshold is clean, so the suggestion is at least as wide and keeps the precision
    assert overall.suggested.max_distance >= configured and overall.suggested.precision >= 0.99
    tightest = overall.sweep[0]
    assert tightest.recall <= overall.configured.recall

    assert calls[0][:2] == (0, 4) and calls[-1] == (4, 4, "done")
    data = json.loads(json.dumps(report.as_dict()))
    assert data["overall"]["configured"]["recall"] == 1.0
    assert {c["family"] for c in data["copies"]} == {"flip", "reencode"}
    assert all(c["found"] is True for c in data["copies"])


@pytest.mark.slow
def test_cli_json_and_table_keep_copies(store, tmp_path):
    keep = tmp_path / "copies"
    data = store.json("calibrate", "--sample", "2", "--families", "flip", "--seed", "1", "--json", "--keep", str(keep))
    assert [f["family"] for f in data["families"]] == ["flip"]
    assert data["families"][0]["configured"]["recall"] == 1.0
    assert data["families"][0]["configured"]["false_matches"] == 0
    kept = sorted(keep.glob("*.mp4"))
    assert len(kept) == 2 and sorted(c["path"] for c in data["copies"]) == [str(p) for p in kept]
    assert not list(keep.glob(".*part*"))

    out = store("calibrate", "--sample", "2", "--families", "flip", "--seed", "1", "--keep", str(keep)).stdout
    assert "recall @ 14" in out and "100% (2/2)" in out
    assert "configured max_distance 14: recall 100%, precision 1.000" in out
    assert "advice: " in out and "based on 2 edited copies (1 family) of 2 stored videos" in out
    assert sorted(keep.glob("*.mp4")) == kept  # reused, not rendered again


def test_too_few_stored_videos_is_a_setup_error(tmp_path, sample_clips):
    prov = Provenance(tmp_path / "data", None)
    result = prov("calibrate", expect=1)
    assert "at least 2 stored videos" in result.stderr and "provenance ingest" in result.stderr
    prov("ingest", str(sample_clips.source))
    result = prov("calibrate", "--families", "flip", expect=1)
    assert "found 1" in result.stderr
    ws = Workspace.open(load_config(None, prov.data_dir, None))
    try:
        with pytest.raises(CalibrationError, match="at least 2"):
            calibrate(ws, families=["flip"])
    finally:
        ws.close()


def test_unknown_family_is_an_input_error(tmp_path):
    result = Provenance(tmp_path / "data", None)("calibrate", "--families", "flip,sepia", expect=2)
    assert "unknown transform family sepia" in result.stderr
    assert parse_families("Crop, flip") == ["flip", "crop"]
    assert FAMILY_NAMES == ", ".join(FAMILIES)  # the help text lists the real names


def _outcome(found: dict[int, bool], false: dict[int, list[int]], error: str | None = None) -> CopyOutcome:
    return CopyOutcome("flip", 1, found=found, false=false, error=error)


def test_scores_and_the_suggested_threshold():
    outcomes = [_outcome({10: False, 14: True, 18: True}, {10: [], 14: [], 18: [7]}),
                _outcome({10: True, 14: True, 18: True}, {10: [], 14: [], 18: [7, 8]}),
                _outcome({}, {}, error="ffmpeg failed")]
    report = summarise("flip", outcomes, [10, 14, 18], 14, 0.99)
    assert (report.copies, report.failed) == (2, 1)
    assert [(s.found, s.false_matches) for s in report.sweep] == [(1, 0), (2, 0), (2, 3)]
    assert report.configured.recall == 1.0 and report.sweep[0].recall == 0.5
    assert report.sweep[2].precision == pytest.approx(0.4)
    assert report.suggested.max_distance == 14
    assert summarise("flip", outcomes, [10, 14, 18], 14, 0.4).suggested.max_distance == 18
    nothing = summarise("flip", [_outcome({10: False}, {10: []})], [10], 10, 0.99)
    assert nothing.configured.precision is None and nothing.suggested is None


def test_the_advice_never_lowers_recall():
    """The configured distance draws a false match; the only clean one finds fewer copies: keep the configured."""
    outcomes = [_outcome({4: False, 14: True}, {4: [], 14: [9]}), _outcome({4: True, 14: True}, {4: [], 14: []})]
    report = summarise("flip", outcomes, [4, 14], 14, 0.99)
    assert report.sweep[0].precision == 1.0 and report.sweep[0].recall == 0.5  # the old advice: 4, at 50%
    assert report.suggested is None
    # a narrower distance that keeps every copy and drops the false match is advised
    outcomes = [_outcome({10: True, 14: True}, {10: [], 14: [9]}), _outcome({10: True, 14: True}, {10: [], 14: []})]
    assert summarise("flip", outcomes, [10, 14], 14, 0.99).suggested.max_distance == 10


@pytest.mark.slow
def test_every_family_renders(tmp_path):
    """Each family's filter graph runs (on a tiny clip); ffmpeg failures are clear and leave nothing behind."""
    clip = T.render(T.Recipe([T.Input(Path("testsrc2=size=192x108:rate=10"), duration=1.0, lavfi=True)]),
                    tmp_path / "src.mp4")
    source = Source(1, "ab" * 32, clip, 1.0, 192, 108)
    background = T.Input(clip, duration=1.0, loop=True)
    for family in FAMILIES:
        recipe = recipe_for(family, source, background)
        if family == "excerpt":
            assert recipe is None  # too short for a 5 s excerpt
            long = recipe_for(family, Source(1, "ab" * 32, clip, 60.0, 192, 108), None)
            assert (long.inputs[0].start, long.inputs[0].duration) == (27.5, 5.0)
            continue
        out = T.render(recipe, tmp_path / f"{family}.mp4")
        assert out.stat().st_size > 500, family
    portrait = Source(2, "cd" * 32, clip, 1.0, 108, 192)
    assert "pad=trunc(ih*1.0/2)*2:ih" in recipe_for("borders", portrait, None).graph()  # pillarbox, not letterbox
    with pytest.raises(T.RenderError, match="nosuchfilter"):
        T.render(T.Recipe([T.Input(clip)], [T.vf("nosuchfilter")]), tmp_path / "bad.mp4")
    assert not (tmp_path / "bad.mp4").exists() and not list(tmp_path.glob(".*part*"))


@pytest.mark.slow
def test_copies_of_one_footage_are_not_false_matches_even_linked_through_another(tmp_path, sample_clips,
                                                                                 monkeypatch):
    """A mirrored and a grey copy of one footage, stored without a match between them (ingested while matching
    was off), both linked to the original stored later, and an unrelated video: copies of any of the three
    copies match the others, and none of that is a false match; the unrelated video is matched by nothing."""
    monkeypatch.setattr("monitor.jobs.calibrate.WINDOW_SECONDS", 6.0)
    ws = Workspace.open(load_config(None, tmp_path / "data", None))
    try:
        params = ws.match_params
        ws.match_params = replace(params, min_coverage=1.01)  # nothing matches: the two copies stay unlinked
        with monkeypatch.context() as off:
            off.setattr("monitor.jobs.matching.media_signals", lambda: [])  # nor by the per-video signal routes
            mirror = ingest_file(ws, sample_clips.edits["mirror"], NewPost(media_id=0, url="https://a.example/1"))
            grey = ingest_file(ws, sample_clips.edits["grey"], NewPost(media_id=0, url="https://b.example/2"))
        ws.match_params = params
        source = ingest_file(ws, sample_clips.source, NewPost(media_id=0, url="https://c.example/3"))
        unrelated = ingest_file(ws, sample_clips.unrelated[0], NewPost(media_id=0, url="https://d.example/4"))
        copies = {mirror.media.id, grey.media.id, source.media.id}
        linked = {frozenset(e) for e in ws.repository.match_edges(ws.settings_id)}
        assert frozenset((mirror.media.id, grey.media.id)) not in linked
        assert {frozenset((source.media.id, m)) for m in (mirror.media.id, grey.media.id)} <= linked

        report = calibrate(ws, sample=4, families=["reencode"], seed=0)
    finally:
        ws.close()
    assert {s.media_id for s in report.sources} == copies | {unrelated.media.id}
    assert report.linked_videos == 3
    configured = report.configured_max_distance
    by_source = {c.source_id: c for c in report.copies}
    for media_id in copies:
        copy = by_source[media_id]
        assert copy.found[configured] and copy.false[configured] == [], copy
        assert set(copy.same_footage) == copies - {media_id}  # the other two copies were matched, and allowed
    assert by_source[unrelated.media.id].same_footage == []
    assert all(s.false_matches == 0 for s in report.overall.sweep if s.max_distance <= configured)
    assert report.overall.configured.precision == 1.0
    assert "matches to 3 stored videos of the sampled footage" in report.basis()
