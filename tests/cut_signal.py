"""A small real per-video signal kind for the tests of the signal plumbing: the times of a video's scene cuts.

Cut times survive what defeats frame hashes (rotation, zoom, off-centre
crops), so this kind finds copies through its own route, as local features
do, while being cheap enough to compute in every test.  Its `match` is real:
it votes for the time offset that lines most query cuts up with stored cuts.
It is not registered on import: the `cut_kind` fixture registers it for one
test (`monkeypatch`), so other tests see the production registry.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pytest

from fingerprints import signals
from fingerprints.align import Segment, VideoMatch
from fingerprints.model import FingerprintSettings
from fingerprints.signals import MediaSignal

CUT_KIND = "test-cuts"
TOLERANCE = 0.07  # seconds between a query cut moved by the offset and its stored cut
MIN_CUTS = 4  # cuts lined up for a match


class _CutCollector:
    def __init__(self) -> None:
        self.times: list[float] = []

    def feed(self, t: float, picture: np.ndarray, cut: bool, windows=()) -> None:
        if cut:
            self.times.append(round(t, 4))

    def finish(self) -> np.ndarray:
        return np.array(self.times, dtype=np.float64)


class _CutIndex:
    """Media with enough cuts to be matched (a brute-force shortlist: the values are verified through `load`)."""

    def __init__(self) -> None:
        self.cut_counts: dict[int, int] = {}

    def add(self, media_id: int, value: np.ndarray) -> None:
        if len(value) >= MIN_CUTS:
            self.cut_counts[media_id] = len(value)

    def remove(self, media_id: int) -> None:
        self.cut_counts.pop(media_id, None)

    def __len__(self) -> int:
        return len(self.cut_counts)


class SceneCutTimes(MediaSignal):
    description = "times of the scene cuts (tests only)"

    def collector(self, settings: FingerprintSettings, query: bool = False) -> _CutCollector:
        return _CutCollector()

    def to_bytes(self, value: np.ndarray) -> bytes:
        return np.asarray(value, dtype="<f8").tobytes()

    def from_bytes(self, blob: bytes) -> np.ndarray:
        if len(blob) % 8:
            raise ValueError(f"a {CUT_KIND} value is a whole number of float64s, not {len(blob)} bytes")
        return np.frombuffer(blob, dtype="<f8").astype(np.float64)

    def make_index(self) -> _CutIndex:
        return _CutIndex()

    def match(self, query: np.ndarray, index: _CutIndex, load: Callable[[int], np.ndarray | None],
              durations: Mapping[int, float], query_duration: float,
              exclude: set[int] = frozenset()) -> list[VideoMatch]:
        if len(query) < MIN_CUTS:
            return []
        found = []
        for media_id in sorted(set(index.cut_counts) - set(exclude)):
            stored = load(media_id)
            if stored is None:
                continue
            offset, lined_up = self._best_offset(query, stored)
            if lined_up < MIN_CUTS:
                continue
            near = np.abs(stored[None, :] - (query[:, None] + offset)).min(axis=1) <= TOLERANCE
            q = query[near]
            segment = Segment(float(q[0]), float(q[-1]), float(q[0] + offset), float(q[-1] + offset))
            span = segment.query_end - segment.query_start
            found.append(VideoMatch(
                media_id=media_id, query_coverage=round(min(1.0, span / max(query_duration, 1e-9)), 4),
                stored_coverage=round(min(1.0, span / max(durations[media_id], 1e-9)), 4),
                segments=[segment], mirrored=False, speed=1.0, offset=round(float(offset), 3),
                score=round(lined_up / len(query), 4), matched_frames=lined_up, mean_distance=0.0,
                routes=[self.name]))
        return found

    @staticmethod
    def _best_offset(query: np.ndarray, stored: np.ndarray) -> tuple[float, int]:
        """The offset lining up most query cuts with stored ones (the smallest such), and how many it lines up."""
        candidates = np.unique(np.round((stored[None, :] - query[:, None]).ravel(), 2))
        counts = [int((np.abs(stored[None, :] - (query[:, None] + d)) <= TOLERANCE).any(axis=1).sum())
                  for d in candidates]
        best = max(counts)
        return float(min((d for d, c in zip(candidates, counts) if c == best), key=abs)), best


SceneCutTimes.name = CUT_KIND  # set after the class is made: importing this module registers nothing


@pytest.fixture
def cut_kind(monkeypatch) -> SceneCutTimes:
    """The cut-times kind, registered for one test as the only per-video signal (fast, and its route alone)."""
    for other in signals.media_signals():
        monkeypatch.delitem(signals._REGISTRY, other.name)
    kind = SceneCutTimes()
    monkeypatch.setitem(signals._REGISTRY, CUT_KIND, kind)
    return kind


@pytest.fixture
def no_media_signals(monkeypatch) -> None:
    """No per-video signal registered for one test: media fingerprinted as before signals existed."""
    for other in signals.media_signals():
        monkeypatch.delitem(signals._REGISTRY, other.name)
