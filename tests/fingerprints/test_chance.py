"""The chance of a match's line (issue 12.4): a still that resembles a stretch of a stored video is no match.

A query that barely changes (a slide, a still room) resembles every moment
of a stretch of a stored video that barely changes either; the fixed tests
of `fingerprints.align` find a line through that stretch, and nothing else in
the store resembles either video, so `fingerprints.specificity` has no crowd
to weigh it against.  `fingerprints.chance` asks how likely such a line is by
chance.  Fingerprints are built from hashes, as in `test_specificity.py`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from fingerprints.align import MatchParams, match_fingerprint
from fingerprints.chance import _covered, moments, surprise
from fingerprints.index import BruteForceIndex
from fingerprints.model import FingerprintSettings, FrameHash, VideoFingerprint
from fingerprints.signals import index_fingerprints


# the chance test is off by default; these tests hold both tests to what they do when on
ON = MatchParams(crowd_ratio=0.25, min_surprise=4.0)

STEP = 0.25


def _flip(rng: np.random.Generator, value: int, bits: int) -> int:
    for b in rng.choice(64, size=bits, replace=False):
        value ^= 1 << int(b)
    return value


def _video(rng: np.random.Generator, moments_: list[dict[str, int]], noise: int = 1) -> VideoFingerprint:
    frames = [FrameHash(index=k, timestamp=k * STEP, quality=12.0,
                        hashes={view: _flip(rng, h, noise) for view, h in moment.items()},
                        mirrored={view: int(rng.integers(0, 2**63)) for view in moment})
              for k, moment in enumerate(moments_)]
    return VideoFingerprint(settings=FingerprintSettings(), duration=len(frames) * STEP, frames=frames)


def _moment(rng: np.random.Generator) -> dict[str, int]:
    return {"picture": int(rng.integers(0, 2**63)), "centre": int(rng.integers(0, 2**63))}


def _near(rng: np.random.Generator, moment: dict[str, int], bits: int) -> dict[str, int]:
    return {view: _flip(rng, h, bits) for view, h in moment.items()}


@pytest.fixture(scope="module")
def still_store():
    """A stored video: 2.5 s of a still (6 bits from the query's still), then 5 s of changing footage."""
    rng = np.random.default_rng(4)
    still = _moment(rng)
    stored = _video(rng, [_near(rng, still, 6)] * 10 + [_moment(rng) for _ in range(20)])
    query = _video(rng, [still] * 10)  # 2.5 s of the query's still
    indexes = index_fingerprints({1: stored}, BruteForceIndex)
    return rng, still, stored, query, indexes


def test_a_still_on_a_still_stretch_matches_only_without_the_chance_test(still_store):
    _, _, _, query, indexes = still_store
    fixed = match_fingerprint(query, indexes, {1: 7.5}, replace(ON, min_surprise=0.0))
    assert [m.media_id for m in fixed] == [1]  # the failure the test exists for: specific by timing alone
    assert match_fingerprint(query, indexes, {1: 7.5}, ON) == []


def test_a_copy_of_changing_footage_is_surprising(still_store):
    rng, _, stored, _, indexes = still_store
    copy = replace(stored, frames=[replace(f, timestamp=f.timestamp, hashes=_near(rng, f.hashes, 4))
                                   for f in stored.frames[10:]], duration=5.0)
    copy = replace(copy, frames=[replace(f, index=k, timestamp=k * STEP) for k, f in enumerate(copy.frames)])
    matches = match_fingerprint(copy, indexes, {1: 7.5}, ON)
    assert [m.media_id for m in matches] == [1]
    assert matches[0].matched_frames == 20


def test_a_near_identical_still_is_left_to_distance(still_store):
    rng, still, _, _, _ = still_store
    stored = _video(rng, [_near(rng, still, 1)] * 10 + [_moment(rng) for _ in range(20)], noise=0)
    indexes = index_fingerprints({1: stored}, BruteForceIndex)
    matches = match_fingerprint(_video(rng, [still] * 10, noise=0), indexes, {1: 7.5}, ON)
    assert [(m.media_id, m.mean_distance) for m in matches] == [(1, 1.0)]


def test_covered_time_merges_overlapping_windows():
    assert _covered(np.array([]), 0.4) == 0.0
    assert _covered(np.array([1.0]), 0.4) == pytest.approx(0.8)
    assert _covered(np.array([1.0, 1.25, 5.0]), 0.4) == pytest.approx(0.8 + 0.25 + 0.8)


def test_a_still_is_one_moment_and_changing_footage_many(still_store):
    _, _, stored, query, indexes = still_store
    fixed = match_fingerprint(query, indexes, {1: 7.5}, replace(ON, min_surprise=0.0))[0]
    times = np.array([f.timestamp for f in query.frames])
    assert len(set(moments(fixed, query, times, 8).tolist())) == 1
    hits = indexes["picture"].query(np.array([f.hash for f in query.frames], dtype=np.uint64), 14)
    # the still's frames resemble the stored video's first 2.5 s (frames 0 to 2.25 s) of 7.5 s: each is on
    # (2.25 + 0.8) / (7.5 + 0.8) of the random lines, and the query is one moment
    assert surprise(fixed, query, hits.query_positions, hits.timestamps, hits.distances, times, 7.5,
                    ON) == pytest.approx(-np.log10(3.05 / 8.3), abs=0.01)
