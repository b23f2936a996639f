"""find-earliest names every edit it finds, per match, with a confidence: through the real job, ffmpeg and SQLite."""

from __future__ import annotations

import json

import pytest

from fingerprints.align import FramePair, VideoMatch
from monitor.config import load_config
from monitor.jobs.earliest import find_earliest
from monitor.jobs.edits import PAIRS, chosen_pairs, shared_start
from monitor.jobs.ingest import ingest_file
from monitor.reports import render_report
from monitor.reports.words import appearance_edits, confidence
from monitor.synth import transforms as T
from monitor.workspace import Workspace
from storage.records import NewPost


@pytest.fixture(scope="module")
def store(tmp_path_factory, sample_clips):
    root = tmp_path_factory.mktemp("explain")
    ws = Workspace.open(load_config(None, root / "data", None))
    source = ingest_file(ws, sample_clips.source, NewPost(media_id=0, url="https://example.org/source"))
    ingest_file(ws, sample_clips.unrelated[0], NewPost(media_id=0, url="https://example.org/other"))
    yield ws, source.media.id, root
    ws.close()


def test_a_grey_captioned_sped_up_copy_is_explained(store, sample_clips):
    ws, source_id, root = store
    query = T.render(T.Recipe([T.Input(sample_clips.source)], [T.vf("hue=s=0"), T.speed(1.5),
                                                                T.caption("Shared from a friend")]),
                     root / "grey-fast-caption.mp4")
    report = find_earliest(ws, query)
    [a] = [a for a in report.appearances if a.media.id == source_id]
    assert a.edits is not None and a.edits.pairs >= 3
    words = appearance_edits(a)
    assert any(w.startswith("played at 1.5") and "sped up" in w for w in words), words
    assert "grey (colour removed)" in words, words
    assert any(w.startswith("a caption or banner band at the top") for w in words), words
    assert any("bottom" in w for w in words[words.index("grey (colour removed)"):]), words  # the caption box
    level, why = confidence(a)
    assert level in ("high", "medium") and "frames matched in order" in why
    data = json.loads(render_report("json", report, ws.store))
    match = next(x["match"] for x in data["appearances"] if x["media_id"] == source_id)
    assert match["edits"] == words and match["confidence"]["level"] == level
    assert match["picture"]["colour"][0] == "grey (colour removed)"
    text = render_report("text", report, ws.store)
    assert "grey (colour removed)" in text and f"confidence: {level}: " in text


def test_an_excerpt_names_the_part_of_the_stored_video_it_shows(store, sample_clips):
    ws, source_id, _ = store
    report = find_earliest(ws, sample_clips.edits["excerpt_6s"])
    [a] = [a for a in report.appearances if a.media.id == source_id]
    [excerpt] = [w for w in appearance_edits(a) if w.startswith("excerpt of the stored video")]
    start, end = (float(x) for x in excerpt.split("(")[1].split(" s")[0].split("–"))
    assert start == pytest.approx(3.3, abs=0.5) and end == pytest.approx(9.3, abs=0.5)
    assert a.edits is not None and a.edits.words() == []  # the same picture: nothing else to say


def _match(times: list[float]) -> VideoMatch:
    return VideoMatch(media_id=1, query_coverage=1.0, stored_coverage=1.0, segments=[], mirrored=False, speed=1.0,
                      offset=0.0, score=1.0, matched_frames=len(times), mean_distance=2.0,
                      pairs=[FramePair(t, t, 2) for t in times])


def test_pairs_share_one_stretch_of_the_query():
    every = _match([k * 0.25 for k in range(40)])
    later = _match([k * 0.25 for k in range(20, 40)])
    at = shared_start([every, later])
    assert at == 5.0  # the first time both have PAIRS pairs in one stretch
    chosen = [[p.query_time for p in chosen_pairs(m, at)] for m in (every, later)]
    assert chosen[0] == chosen[1] and len(chosen[0]) == PAIRS and chosen[0][-1] - chosen[0][0] <= 2.5
    assert [p.query_time for p in chosen_pairs(_match([1.0, 9.0]), at)] == [1.0]  # too sparse for a stretch


def test_the_geometry_local_features_found_is_named():
    """`VideoMatch.transform` (rotation, scales, the part of the stored picture covered) in words."""
    from monitor.reports.words import detected_edits

    m = _match([k * 0.25 for k in range(40)])
    m.transform = {"rotation": -12.4, "scale_x": 0.8, "scale_y": 1.0, "stored_x": 0.0, "stored_y": 0.0,
                   "stored_w": 0.62, "stored_h": 1.0, "query_x": 0.0, "query_y": 0.0, "query_w": 1.0, "query_h": 1.0}
    words = detected_edits(m)
    assert "rotated 12° clockwise" in words  # the query turned relative to the stored picture
    assert "zoomed ×1.12" in words
    assert "stretched: 1.25× as wide for its height as the stored picture" in words
    assert "cropped: left 62% kept of the stored picture" in words
    m.transform = {"rotation": 6.5, "scale_x": 1.0, "scale_y": 1.05}  # within RANSAC's noise on unrotated copies
    assert detected_edits(m) == []  # nothing worth naming
    m.transform = {}
    assert detected_edits(m) == []
