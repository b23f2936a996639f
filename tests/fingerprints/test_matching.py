"""End-to-end matching on real footage (the chair set) and generated re-upload edits."""

from __future__ import annotations

import numpy as np
import pytest

from fingerprints.align import match_fingerprint
from fingerprints.index import BruteForceIndex
from fingerprints.video import fingerprint_video
from tests.video_fixtures import EXCERPT_START

CHAIR_FAMILY = [
    "chair-orig-22-sd-bar.mp4",
    "chair-22-sd-grey-bar.mp4",
    "chair-22-sd-sepia-bar.mp4",
    "chair-22-with-small-logo-bar.mp4",
    "chair-22-with-large-logo-bar.mp4",
    "chair-20-sd-bar.mp4",
    "chair-19-sd-bar.mp4",
]
NEGATIVE = "test-padded-dimensions.mp4"
TRIM_OFFSETS = {"chair-20-sd-bar.mp4": 2.0, "chair-19-sd-bar.mp4": 3.7}


def _index(fingerprints: dict[str, object]) -> tuple[BruteForceIndex, dict[str, int], dict[int, float]]:
    index = BruteForceIndex()
    ids = {name: i for i, name in enumerate(fingerprints)}
    for name, fp in fingerprints.items():
        index.add(ids[name], np.array([f.timestamp for f in fp.frames]),
                  np.array([f.hash for f in fp.frames], dtype=np.uint64))
    return index, ids, {ids[n]: fp.duration for n, fp in fingerprints.items()}


@pytest.fixture(scope="module")
def chair(chair_dir):
    fps = {name: fingerprint_video(chair_dir / name) for name in [*CHAIR_FAMILY, NEGATIVE]}
    return (fps, *_index(fps))


@pytest.mark.parametrize("query", CHAIR_FAMILY)
def test_every_chair_file_finds_the_other_six(chair, query):
    fps, index, ids, durations = chair
    names = {v: k for k, v in ids.items()}
    matches = match_fingerprint(fps[query], index, durations, exclude={ids[query]})
    found = {names[m.media_id] for m in matches}
    assert found == set(CHAIR_FAMILY) - {query}
    for m in matches:
        assert not m.mirrored
        assert m.speed == 1.0


@pytest.mark.parametrize("trim", sorted(TRIM_OFFSETS))
def test_trims_are_placed_at_their_offset_in_the_original(chair, trim):
    fps, index, ids, durations = chair
    matches = match_fingerprint(fps[trim], index, durations, exclude={ids[trim]})
    original = next(m for m in matches if m.media_id == ids["chair-orig-22-sd-bar.mp4"])
    assert original.offset == pytest.approx(TRIM_OFFSETS[trim], abs=0.5)
    first = original.segments[0]
    assert first.stored_start - first.query_start == pytest.approx(TRIM_OFFSETS[trim], abs=0.5)
    assert original.query_coverage > 0.9


def test_negative_matches_nothing_either_way(chair):
    fps, index, ids, durations = chair
    assert match_fingerprint(fps[NEGATIVE], index, durations, exclude={ids[NEGATIVE]}) == []
    for name in CHAIR_FAMILY:
        matched = {m.media_id for m in match_fingerprint(fps[name], index, durations)}
        assert ids[NEGATIVE] not in matched


@pytest.fixture(scope="module")
def generated(sample_clips):
    fps = {"source": fingerprint_video(sample_clips.source)}
    for i, path in enumerate(sample_clips.unrelated):
        fps[f"unrelated-{i}"] = fingerprint_video(path)
    edits = {name: fingerprint_video(path) for name, path in sample_clips.edits.items()}
    return fps, edits, *_index(fps)


@pytest.mark.parametrize("edit", ["mirror", "letterbox", "blurpad_9x16", "speed_1.25x", "grey", "excerpt_6s"])
def test_reupload_edits_find_the_source_only(generated, edit):
    _, edits, index, ids, durations = generated
    matches = match_fingerprint(edits[edit], index, durations)
    assert [m.media_id for m in matches] == [ids["source"]], f"{edit} should match the source and nothing else"
    m = matches[0]
    assert m.mirrored is (edit == "mirror")
    if edit == "speed_1.25x":
        assert m.speed == pytest.approx(1.25, abs=0.05)
        assert m.query_coverage > 0.8
    elif edit == "excerpt_6s":
        assert m.offset == pytest.approx(EXCERPT_START, abs=0.5)
        assert m.query_coverage > 0.85 and m.stored_coverage < 0.6
    else:
        assert m.speed == 1.0 and abs(m.offset) <= 0.25
        assert m.query_coverage > 0.8 and m.stored_coverage > 0.8


def test_unrelated_clips_do_not_match_each_other_or_the_source(generated):
    fps, _, index, ids, durations = generated
    for name in fps:
        if name.startswith("unrelated"):
            assert match_fingerprint(fps[name], index, durations, exclude={ids[name]}) == []


def test_segments_report_both_sides(generated):
    _, edits, index, ids, durations = generated
    (m,) = match_fingerprint(edits["excerpt_6s"], index, durations)
    (seg,) = m.segments
    assert seg.query_start == pytest.approx(0.0, abs=0.5)
    assert seg.query_end == pytest.approx(6.0, abs=0.5)
    assert seg.stored_start == pytest.approx(EXCERPT_START, abs=0.5)
    assert seg.stored_end == pytest.approx(EXCERPT_START + 6.0, abs=0.5)
    assert all(p.distance <= 14 for p in m.pairs)
