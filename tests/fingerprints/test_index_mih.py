"""MultiIndexHashIndex against the brute-force reference: the same hits, in the same order.

Stores are random hashes plus planted structure (near-duplicates of query
hashes at every distance up to 20 bits, a static shot repeating one hash, a
biased bit that is always set as pHash's DC bit is), so every band radius and
the de-duplication between bands are exercised.
"""

from __future__ import annotations

import numpy as np
import pytest

from fingerprints.index import (
    BruteForceIndex,
    MultiIndexHashIndex,
    _BandedSegment,
    _brute_force,
    index_kind_for,
    make_index,
)

DISTANCES = [0, 6, 14, 18]
TOP_BIT = np.uint64(1 << 63)


def _flip(hashes: np.ndarray, bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each hash with `bits[i]` distinct random bits flipped."""
    out = hashes.copy()
    for i, n in enumerate(bits):
        for b in rng.choice(64, size=int(n), replace=False):
            out[i] ^= np.uint64(1) << np.uint64(b)
    return out


def _random(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)


def _store_and_queries(seed: int, videos: int = 40, frames: int = 100, queries: int = 120):
    """(media, times, hashes, queries): `videos` of `frames` each; queries near some stored frames."""
    rng = np.random.default_rng(seed)
    hashes = _random(rng, videos * frames)
    hashes[: videos * frames // 2] |= TOP_BIT  # half the store shares a biased bit
    hashes[frames: frames + 60] = hashes[frames]  # a static shot: one hash 60 times
    media = np.repeat(np.arange(videos, dtype=np.int64) * 7 + 3, frames)
    times = np.tile(np.arange(frames) * 0.25, videos)
    seeds = _random(rng, queries)
    seeds[:2] = hashes[frames]
    # planted near-duplicates of the queries, 0..20 bits away, several per query
    planted = _flip(np.repeat(seeds, 3), rng.integers(0, 21, 3 * queries), rng)
    spots = rng.choice(len(hashes), size=len(planted), replace=False)
    hashes[spots] = planted
    queries_ = np.concatenate([seeds, seeds[:10]])  # repeated query hashes too
    return media, times, hashes, queries_


def _rows(hits) -> list[tuple[int, int, float, int]]:
    return list(zip(hits.query_positions.tolist(), hits.media_ids.tolist(), hits.timestamps.tolist(),
                    hits.distances.tolist()))


def _same(mih: MultiIndexHashIndex, brute: BruteForceIndex, queries: np.ndarray, distances=DISTANCES) -> None:
    for d in distances:
        expected = _rows(brute.query(queries, d))
        assert _rows(mih.query(queries, d)) == expected, f"max_distance={d}"


@pytest.mark.parametrize("bands", [3, 4, 5, 6])
def test_banded_segment_finds_exactly_the_pairs_within_distance(bands):
    # the segment alone, so the banded search is used even where the index would brute-force
    _, _, hashes, queries = _store_and_queries(seed=bands)
    segment = _BandedSegment(hashes, bands)
    for d in DISTANCES if bands > 3 else DISTANCES[:3]:  # 3 bands at 18: 166k lookups a query hash
        q = queries[:25] if bands == 3 else queries
        qi, rows, dist = segment.query(q, d)
        got = sorted(zip(qi.tolist(), rows.tolist(), dist.tolist()))
        bq, brows, bdist = _brute_force(q, hashes, d)
        assert got == sorted(zip(bq.tolist(), brows.tolist(), bdist.tolist())), f"max_distance={d}"


def test_banded_segment_insert_equals_a_fresh_build():
    _, _, hashes, queries = _store_and_queries(seed=11)
    segment = _BandedSegment(hashes[:1000], 5)
    segment.insert(hashes[1000:1001])
    segment.insert(hashes[1001:3000])
    segment.insert(hashes[3000:])
    fresh = _BandedSegment(hashes, 5)
    for band in range(5):
        assert np.array_equal(segment.offsets[band], fresh.offsets[band])
        assert sorted(segment.rows[band].tolist()) == sorted(fresh.rows[band].tolist())
    for d in DISTANCES:
        a, b = segment.query(queries, d), fresh.query(queries, d)
        assert sorted(zip(*(x.tolist() for x in a))) == sorted(zip(*(x.tolist() for x in b)))


@pytest.mark.parametrize("bands", [4, 5, 6])
def test_built_index_returns_brute_force_hits_in_its_order(bands):
    media, times, hashes, queries = _store_and_queries(seed=21)
    mih = MultiIndexHashIndex.build(media, times, hashes, bands=bands)
    assert mih._main is not None
    brute = BruteForceIndex.build(media, times, hashes)
    _same(mih, brute, queries)
    assert len(brute.query(queries, 14)) > len(queries)  # the planted pairs are there to find
    assert len(mih) == len(hashes)
    assert mih.media_ids() == set(media.tolist())


def test_incremental_adds_with_merges_match_brute_force():
    media, times, hashes, queries = _store_and_queries(seed=31)
    mih, brute = MultiIndexHashIndex(bands=5, merge_rows=700), BruteForceIndex()
    seen_both = False
    for start in range(0, len(hashes), 100):
        m = int(media[start])
        mih.add(m, times[start:start + 100], hashes[start:start + 100])
        brute.add(m, times[start:start + 100], hashes[start:start + 100])
        if start % 300 == 0:  # query between adds: recent segment, merges, main
            _same(mih, brute, queries, distances=[6, 14])
            seen_both |= mih._main is not None and len(mih._recent_hashes) > 0
    _same(mih, brute, queries)
    assert seen_both and len(mih) == len(brute)


def test_removes_tombstones_compaction_and_readding():
    media, times, hashes, queries = _store_and_queries(seed=41)
    mih = MultiIndexHashIndex.build(media, times, hashes, bands=5)
    brute = BruteForceIndex.build(media, times, hashes)
    ids = sorted(set(media.tolist()))
    for m in ids[:5]:  # under a quarter: tombstones only
        mih.remove(m)
        brute.remove(m)
    assert mih._dead == 500
    _same(mih, brute, queries)
    extra = _flip(queries[:50], np.full(50, 3), np.random.default_rng(1))
    mih.add(999, np.arange(50) * 0.5, extra)  # into the recent segment, then removed from it
    mih.remove(999)
    mih.add(ids[0], np.arange(50) * 0.5, extra)  # a removed id comes back with new frames
    brute.add(ids[0], np.arange(50) * 0.5, extra)
    _same(mih, brute, queries)
    for m in ids[5:10]:  # a quarter dead: compacted
        mih.remove(m)
        brute.remove(m)
    assert mih._dead == 0 and len(mih) == len(brute)
    _same(mih, brute, queries)
    assert mih.media_ids() == brute.media_ids()


def test_serialize_round_trip_and_interchange_with_brute_force():
    media, times, hashes, queries = _store_and_queries(seed=51)
    mih = MultiIndexHashIndex.build(media[:3000], times[:3000], hashes[:3000], bands=5)
    mih.add(5000, times[3000:], hashes[3000:])
    mih.remove(int(media[0]))
    brute = BruteForceIndex.deserialize(mih.serialize())
    again = MultiIndexHashIndex.deserialize(mih.serialize(), bands=6)
    from_brute = MultiIndexHashIndex.deserialize(brute.serialize())
    for other in (again, from_brute):
        _same(other, brute, queries)
        assert len(other) == len(mih) == len(brute)


def test_query_media_is_query_restricted_to_those_media():
    """The second stage of the matcher's two-stage lookup: the same hits, in the same order, of chosen media
    only, in the main segment, the recent one, after removes, and for no media at all."""
    media, times, hashes, queries = _store_and_queries(seed=71)
    mih = MultiIndexHashIndex.build(media[:3000], times[:3000], hashes[:3000], bands=5)
    brute = BruteForceIndex.build(media[:3000], times[:3000], hashes[:3000])
    for index in (mih, brute):
        index.add(5000, times[3000:3100], hashes[3000:3100])  # a recent segment
        index.remove(int(media[0]))
    chosen = {int(media[0]), int(media[150]), int(media[2900]), 5000, 123456}
    for index in (mih, brute):
        for distance in (8, 14):
            full = index.query(queries, distance)
            keep = np.isin(full.media_ids, list(chosen))
            subset = index.query_media(queries, distance, chosen)
            assert _rows(subset) == [row for row, k in zip(_rows(full), keep) if k]
        assert len(index.query_media(queries, 14, set())) == 0
    assert len(mih.query_media(queries, 14, chosen)) > 0


def test_empty_index_and_empty_query():
    mih = MultiIndexHashIndex()
    assert len(mih) == 0 and mih.media_ids() == set()
    assert len(mih.query(np.array([1, 2, 3], dtype=np.uint64), 14)) == 0
    mih = MultiIndexHashIndex.deserialize(mih.serialize())
    assert len(mih) == 0
    media, times, hashes, _ = _store_and_queries(seed=61)
    mih = MultiIndexHashIndex.build(media, times, hashes)
    hits = mih.query(np.zeros(0, dtype=np.uint64), 14)
    assert len(hits) == 0 and hits.distances.dtype == np.int16
    mih.add(1, np.zeros(0), np.zeros(0, dtype=np.uint64))
    assert len(mih) == len(hashes)


def test_make_index_kinds():
    media, times, hashes, queries = _store_and_queries(seed=71)
    assert isinstance(make_index("brute"), BruteForceIndex)
    assert isinstance(make_index("mih"), MultiIndexHashIndex)
    assert isinstance(make_index("auto"), BruteForceIndex)
    built = make_index("mih", media, times, hashes)
    assert _rows(built.query(queries, 14)) == _rows(make_index("brute", media, times, hashes).query(queries, 14))
    assert index_kind_for(10_000_000) == "mih" and index_kind_for(100) == "brute"
    with pytest.raises(ValueError, match="use one of"):
        make_index("annoy")
