"""Frame-hash indexes: which stored frames are near a query frame.

An index has four verbs: build, add, query, serialize.  `BruteForceIndex`
compares every query hash with every stored hash; it is exact, and it is the
reference every faster index is tested against.

`MultiIndexHashIndex` returns the same hits without comparing a query with
every stored frame, so a store of millions of frames still answers a query
video in milliseconds to a fraction of a second rather than tens of seconds
(figures in docs/benchmarks.md).  It is multi-index hashing (Norouzi, Punjani
and Fleet, "Fast Search in Hamming Space with Multi-Index Hashing", CVPR 2012):
the 64 bits are cut into a few bands, and a hash within distance r of the query
is within a known small distance of it on at least one band, so looking up the
query's near band values in a per-band bucket table finds every candidate, and
the exact distance of each candidate is then checked.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Elements of the query x stored distance matrix computed at once (bounds memory).
_BLOCK_ELEMENTS = 1 << 22
# Query x probe lookups, and candidate rows, expanded at once by the banded index:
# arrays this small stay in cache and are reused by the allocator, which halves the cost.
_PROBE_BLOCK = 1 << 16
_CANDIDATE_BLOCK = 1 << 17


@dataclass(frozen=True)
class IndexHits:
    """Column-wise hits: query frame position, stored media, stored time, distance."""

    query_positions: np.ndarray  # int64
    media_ids: np.ndarray  # int64
    timestamps: np.ndarray  # float64
    distances: np.ndarray  # int16

    def __len__(self) -> int:
        return len(self.query_positions)


class FrameIndex(Protocol):
    def add(self, media_id: int, timestamps: np.ndarray, hashes: np.ndarray) -> None: ...

    def remove(self, media_id: int) -> None: ...

    def query(self, hashes: np.ndarray, max_distance: int, complete_to: int | None = None) -> IndexHits:
        """Every stored hash within `max_distance` bits, with its exact distance.  With `complete_to`, only
        those within `complete_to` bits are certain to be returned: an index may skip work that finds the
        rest (`probe_cap`); an exact index returns them all anyway."""
        ...

    def query_media(self, hashes: np.ndarray, max_distance: int, media_ids: set[int]) -> IndexHits: ...

    def serialize(self) -> bytes: ...

    def __len__(self) -> int: ...

    def media_ids(self) -> set[int]: ...


def _empty_hits() -> IndexHits:
    empty = np.zeros(0, dtype=np.int64)
    return IndexHits(empty, empty.copy(), np.zeros(0), np.zeros(0, dtype=np.int16))


def _brute_force(query: np.ndarray, stored: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query index, stored index, distance) of every pair within `max_distance`, query-major."""
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    if len(stored) and len(query):
        rows = max(1, _BLOCK_ELEMENTS // len(stored))
        for start in range(0, len(query), rows):
            block = query[start:start + rows]
            dist = np.bitwise_count(block[:, None] ^ stored[None, :])
            flat = np.flatnonzero(dist <= max_distance)  # 1-D: twice as fast as a 2-D nonzero
            qi, si = np.divmod(flat, len(stored))
            parts.append((qi + start, si, dist.ravel()[flat]))
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)
    return (np.concatenate([p[0] for p in parts]).astype(np.int64),
            np.concatenate([p[1] for p in parts]).astype(np.int64),
            np.concatenate([p[2] for p in parts]).astype(np.int16))


def _subset_hits(query: np.ndarray, media: np.ndarray, times: np.ndarray, hashes: np.ndarray,
                 max_distance: int) -> IndexHits:
    """Brute force over a few media's rows (in insertion order): the second stage of a two-stage lookup."""
    qi, si, dist = _brute_force(np.asarray(query, dtype=np.uint64), hashes, max_distance)
    if not len(qi):
        return _empty_hits()
    return IndexHits(qi, media[si], times[si], dist)


def _load_columns(blob: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.load(io.BytesIO(blob)) as data:
        return data["media"], data["times"], data["hashes"]


def _save_columns(media: np.ndarray, times: np.ndarray, hashes: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, media=media, times=times, hashes=hashes)
    return out.getvalue()


class BruteForceIndex:
    """Exact Hamming search by XOR and popcount over all stored hashes."""

    def __init__(self) -> None:
        self._media = np.zeros(0, dtype=np.int64)
        self._times = np.zeros(0, dtype=np.float64)
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    @classmethod
    def build(cls, media_ids: np.ndarray, timestamps: np.ndarray, hashes: np.ndarray) -> BruteForceIndex:
        index = cls()
        index._media = np.asarray(media_ids, dtype=np.int64).copy()
        index._times = np.asarray(timestamps, dtype=np.float64).copy()
        index._hashes = np.asarray(hashes, dtype=np.uint64).copy()
        return index

    def add(self, media_id: int, timestamps: np.ndarray, hashes: np.ndarray) -> None:
        times = np.asarray(timestamps, dtype=np.float64)
        self._pending.append((np.full(len(times), media_id, dtype=np.int64), times,
                              np.asarray(hashes, dtype=np.uint64)))

    def _consolidate(self) -> None:
        if self._pending:
            media, times, hashes = zip(*self._pending)
            self._media = np.concatenate([self._media, *media])
            self._times = np.concatenate([self._times, *times])
            self._hashes = np.concatenate([self._hashes, *hashes])
            self._pending.clear()

    def remove(self, media_id: int) -> None:
        self._consolidate()
        keep = self._media != media_id
        self._media, self._times, self._hashes = self._media[keep], self._times[keep], self._hashes[keep]

    def __len__(self) -> int:
        self._consolidate()
        return len(self._hashes)

    def media_ids(self) -> set[int]:
        self._consolidate()
        return set(np.unique(self._media).tolist())

    def query(self, hashes: np.ndarray, max_distance: int, complete_to: int | None = None) -> IndexHits:
        self._consolidate()  # exact: every hash within max_distance, whatever `complete_to`
        query = np.asarray(hashes, dtype=np.uint64)
        qi, si, dist = _brute_force(query, self._hashes, max_distance)
        if not len(qi):
            return _empty_hits()
        return IndexHits(qi, self._media[si], self._times[si], dist)

    def query_media(self, hashes: np.ndarray, max_distance: int, media_ids: set[int]) -> IndexHits:
        """`query`'s hits of the given media only, found by comparing with their frames alone."""
        self._consolidate()
        rows = np.flatnonzero(np.isin(self._media, np.fromiter(media_ids, dtype=np.int64)))
        return _subset_hits(hashes, self._media[rows], self._times[rows], self._hashes[rows], max_distance)

    def nbytes(self) -> int:
        """Memory held by the stored columns."""
        self._consolidate()
        return self._media.nbytes + self._times.nbytes + self._hashes.nbytes

    def serialize(self) -> bytes:
        self._consolidate()
        return _save_columns(self._media, self._times, self._hashes)

    @classmethod
    def deserialize(cls, blob: bytes) -> BruteForceIndex:
        return cls.build(*_load_columns(blob))


# --- multi-index hashing -------------------------------------------------------------


@functools.cache
def _probe_masks(width: int, radius: int) -> np.ndarray:
    """Every XOR mask of `width` bits with at most `radius` bits set, fewest bits first."""
    layers = [np.zeros(1, dtype=np.int64)]
    bits = np.arange(width)
    for _ in range(min(radius, width)):
        last = layers[-1]
        top = np.frexp(last.astype(np.float64))[1] - 1  # highest set bit; -1 for no bit
        # extend each mask by one bit above its highest, so every mask is made once
        owner, bit = np.nonzero(bits[None, :] > top[:, None])
        layers.append(last[owner] | (np.int64(1) << bit))
    return np.concatenate(layers)


def _band_radii(bands: int, max_distance: int) -> list[int]:
    """Per-band search radii that cannot miss a hash within `max_distance`.

    Generalised pigeonhole: if the radii sum to ``max_distance - bands + 1`` and
    a hash differs from the query by more than radius_i on every band i, it
    differs by at least ``max_distance + 1`` bits in all.  A radius of -1 means
    the band need not be searched.  Wider bands (listed first) get the spare bits.
    """
    base, extra = divmod(max_distance - bands + 1, bands)
    return [base + (1 if i < extra else 0) for i in range(bands)]


def probe_cap(bands: int, max_distance: int, complete_to: int | None) -> int | None:
    """The per-band probe radius that still finds every hash within `complete_to` bits (None: no cap).

    Pigeonhole again: a hash more than r bits away on every one of `bands` bands is at least
    ``bands * (r + 1)`` bits away, so r = ceil((complete_to + 1) / bands) - 1 misses none within
    `complete_to`.  Pairs between that and `max_distance` are found only where some band is within r:
    with 3 bands at 14 bits and complete_to = 11, 1,562 probes per band instead of 7,547.
    """
    if complete_to is None or complete_to >= max_distance:
        return None
    return max(0, -(-(complete_to + 1) // bands) - 1)


def capped_radii(bands: int, max_distance: int, cap: int | None) -> list[int]:
    """`_band_radii`, each at most `cap` (None: exact)."""
    radii = _band_radii(bands, max_distance)
    return radii if cap is None else [min(r, cap) for r in radii]


def _band_layout(bands: int) -> list[tuple[int, int]]:
    """(shift, width) of each band, wider bands first, covering all 64 bits."""
    widths = [64 // bands + (1 if i < 64 % bands else 0) for i in range(bands)]
    shifts = np.concatenate([[0], np.cumsum(widths)[:-1]])
    return [(int(s), w) for s, w in zip(shifts, widths)]


_ARANGE = np.arange(_CANDIDATE_BLOCK)
DEFAULT_BANDS = 4


def _row_dtype(rows: int) -> type:
    return np.int32 if rows < 2**31 else np.int64


def _stable_order(values: np.ndarray, width: int) -> np.ndarray:
    """argsort of band values; as uint16 numpy radix-sorts them, ~4x faster than int64."""
    return np.argsort(values.astype(np.uint16) if width <= 16 else values, kind="stable")


def _arange(n: int) -> np.ndarray:
    return _ARANGE[:n] if n <= len(_ARANGE) else np.arange(n)


def _probe_runs(keys: np.ndarray, masks: np.ndarray,
                offsets: np.ndarray) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(bucket starts, bucket lengths, query index) of the non-empty buckets that the probes of each
    query's band key (`keys`) reach, in runs of about _CANDIDATE_BLOCK candidate rows."""
    step = max(1, _PROBE_BLOCK // len(masks))
    for q0 in range(0, len(keys), step):
        probes = keys[q0:q0 + step, None] ^ masks[None, :]
        starts = offsets[probes].astype(np.int64, copy=False)
        lengths = (offsets[probes + 1].astype(np.int64, copy=False) - starts).ravel()
        hit = np.flatnonzero(lengths)
        if not len(hit):
            continue
        starts, lengths = starts.ravel()[hit], lengths[hit]
        owners = hit // len(masks) + q0
        cuts = np.searchsorted(np.cumsum(lengths), np.arange(_CANDIDATE_BLOCK, lengths.sum(),
                                                            _CANDIDATE_BLOCK), side="right")
        yield from zip(np.split(starts, cuts), np.split(lengths, cuts), np.split(owners, cuts))


def _within(bucket_hashes: np.ndarray, query: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
            owners: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(position in bucket order, XOR with the query, query index) of one run's candidates within
    `max_distance`."""
    ends = np.cumsum(lengths)
    positions = np.repeat(starts - (ends - lengths), lengths)
    positions += _arange(len(positions))
    xor = bucket_hashes[positions]
    xor ^= np.repeat(query[owners], lengths)
    keep = np.flatnonzero(np.bitwise_count(xor) <= max_distance)
    return positions[keep], xor[keep], owners[np.searchsorted(ends, keep, side="right")]


class _BandedSegment:
    """Hashes bucketed by each band's value, so a band value's rows are one slice.

    Per band: ``offsets[v]:offsets[v + 1]`` is the slice of rows whose band
    equals v; ``rows`` holds their row numbers and ``hashes`` a copy of their
    full hashes, so checking candidates reads memory in order.
    """

    def __init__(self, hashes: np.ndarray, bands: int) -> None:
        self.bands = bands
        self.layout = _band_layout(bands)
        self.size = len(hashes)
        self.offsets: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.hashes: list[np.ndarray] = []
        for shift, width in self.layout:
            values = self._values(hashes, shift, width)
            order = _stable_order(values, width).astype(_row_dtype(len(hashes)))
            self.offsets.append(np.concatenate([[0], np.cumsum(np.bincount(values, minlength=1 << width))]))
            self.rows.append(order)
            self.hashes.append(hashes[order])

    @staticmethod
    def _values(hashes: np.ndarray, shift: int, width: int) -> np.ndarray:
        return ((hashes >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)

    def insert(self, hashes: np.ndarray) -> None:
        """Add rows ``size .. size + len(hashes) - 1`` without re-sorting the rest."""
        new_rows = np.arange(self.size, self.size + len(hashes), dtype=_row_dtype(self.size + len(hashes)))
        for band, (shift, width) in enumerate(self.layout):
            values = self._values(hashes, shift, width)
            order = _stable_order(values, width)
            at = self.offsets[band][values[order] + 1]  # after the bucket's present rows
            self.rows[band] = np.insert(self.rows[band].astype(new_rows.dtype, copy=False), at, new_rows[order])
            self.hashes[band] = np.insert(self.hashes[band], at, hashes[order])
            self.offsets[band] = self.offsets[band] + np.concatenate(
                [[0], np.cumsum(np.bincount(values, minlength=1 << width))])
        self.size += len(hashes)

    def probe_cost(self, max_distance: int, cap: int | None = None) -> int:
        radii = capped_radii(self.bands, max_distance, cap)
        return sum(len(_probe_masks(w, r)) for (_, w), r in zip(self.layout, radii) if r >= 0)

    def query(self, query: np.ndarray, max_distance: int,
              cap: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, row, distance) of every stored hash within `max_distance`, unordered (with `cap`, of
        those within `cap` bits of the query on some band)."""
        radii = capped_radii(self.bands, max_distance, cap)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for band, ((shift, width), radius) in enumerate(zip(self.layout, radii)):
            if radius < 0:
                continue
            keys = self._values(query, shift, width)
            for s, n, o in _probe_runs(keys, _probe_masks(width, radius), self.offsets[band]):
                parts.append(self._check(band, radii, query, s, n, o, max_distance))
        if not parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                np.concatenate([p[2] for p in parts]))

    def _check(self, band: int, radii: list[int], query: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
               owners: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact distances of one run of candidates; keeps each pair for the first band that finds it."""
        positions, xor, qi = _within(self.hashes[band], query, starts, lengths, owners, max_distance)
        for earlier in range(band):
            if radii[earlier] >= 0:
                shift, width = self.layout[earlier]
                new = np.bitwise_count(self._values(xor, shift, width)) > radii[earlier]
                positions, qi, xor = positions[new], qi[new], xor[new]
        return qi.astype(np.int64), self.rows[band][positions].astype(np.int64), np.bitwise_count(xor).astype(np.int16)


class MultiIndexHashIndex:
    """Exact Hamming search by multi-index hashing: BruteForceIndex's hits, in its order.

    Not approximate: every stored hash within ``max_distance`` is returned, with
    its exact distance; only the work is smaller.  A query looks up, per band,
    the band values within that band's radius (2,228 bucket lookups per query
    hash with 4 bands at distance 14) and checks the stored hashes found there:
    3.4% of a store of uniform hashes, more where stored band values cluster
    around the query's.  So the cost is still linear in the store, with a
    constant 20-30 times smaller than brute force at 10^7 hashes.  When the
    lookups would cost more than a brute-force pass (large distances, small
    stores) a segment is searched by brute force.

    Storage is log-structured.  ``add`` only queues; queued rows go to a small
    ``recent`` segment, itself banded, that is merged into the ``main`` segment
    (by inserting into the sorted bands, not by rebuilding them) once it holds
    an eighth of main or `merge_rows`, whichever is smaller.  ``remove`` marks
    rows dead; they are dropped when a quarter of main is dead.

    `bands`: 4 bands of 16 bits were fastest at 10^7 stored hashes and distance
    14 (benchmarks/index_speed.py, docs/benchmarks.md); 5 bands of 12-13 bits
    are up to twice as fast below about 10^6, where either answers in tens of
    milliseconds.  3 bands give fewer candidates but many more scattered
    bucket lookups, which cost more in numpy.
    """

    def __init__(self, bands: int = DEFAULT_BANDS, merge_rows: int = 1 << 18) -> None:
        self._bands = bands
        self._merge_rows = merge_rows
        # main segment: rows in insertion order, banded, with a liveness flag
        self._media = np.zeros(0, dtype=np.int64)
        self._times = np.zeros(0, dtype=np.float64)
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._alive = np.zeros(0, dtype=bool)
        self._dead = 0
        self._main: _BandedSegment | None = None
        # recent segment: later rows, banded, removed eagerly
        self._recent_media = np.zeros(0, dtype=np.int64)
        self._recent_times = np.zeros(0, dtype=np.float64)
        self._recent_hashes = np.zeros(0, dtype=np.uint64)
        self._recent: _BandedSegment | None = None
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    @classmethod
    def build(cls, media_ids: np.ndarray, timestamps: np.ndarray, hashes: np.ndarray,
              bands: int = DEFAULT_BANDS) -> MultiIndexHashIndex:
        index = cls(bands=bands)
        index._set_main(np.asarray(media_ids, dtype=np.int64).copy(),
                        np.asarray(timestamps, dtype=np.float64).copy(),
                        np.asarray(hashes, dtype=np.uint64).copy())
        return index

    def _set_main(self, media: np.ndarray, times: np.ndarray, hashes: np.ndarray) -> None:
        self._media, self._times, self._hashes = media, times, hashes
        self._alive = np.ones(len(hashes), dtype=bool)
        self._dead = 0
        self._main = _BandedSegment(hashes, self._bands) if len(hashes) else None

    def add(self, media_id: int, timestamps: np.ndarray, hashes: np.ndarray) -> None:
        times = np.asarray(timestamps, dtype=np.float64)
        self._pending.append((np.full(len(times), media_id, dtype=np.int64), times,
                              np.asarray(hashes, dtype=np.uint64)))

    def _consolidate(self) -> None:
        if not self._pending:
            return
        media, times, hashes = (np.concatenate(c) for c in zip(*self._pending))
        self._pending.clear()
        self._recent_media = np.concatenate([self._recent_media, media])
        self._recent_times = np.concatenate([self._recent_times, times])
        self._recent_hashes = np.concatenate([self._recent_hashes, hashes])
        if len(self._recent_hashes) >= self._merge_at():
            self._merge_recent()
        elif self._recent is None:
            self._recent = _BandedSegment(self._recent_hashes, self._bands)
        else:
            self._recent.insert(hashes)

    def _merge_at(self) -> int:
        """Recent rows that trigger a merge: an eighth of main, within [1024, merge_rows]."""
        return min(self._merge_rows, max(len(self._hashes) // 8, 1024))

    def _merge_recent(self) -> None:
        media = np.concatenate([self._media, self._recent_media])
        times = np.concatenate([self._times, self._recent_times])
        hashes = np.concatenate([self._hashes, self._recent_hashes])
        if self._main is None:
            self._set_main(media, times, hashes)
        else:
            self._main.insert(self._recent_hashes)
            self._alive = np.concatenate([self._alive, np.ones(len(self._recent_hashes), dtype=bool)])
            self._media, self._times, self._hashes = media, times, hashes
        self._recent_media = np.zeros(0, dtype=np.int64)
        self._recent_times = np.zeros(0, dtype=np.float64)
        self._recent_hashes = np.zeros(0, dtype=np.uint64)
        self._recent = None

    def remove(self, media_id: int) -> None:
        self._consolidate()
        keep = self._recent_media != media_id
        if not keep.all():
            self._recent_media, self._recent_times, self._recent_hashes = (
                self._recent_media[keep], self._recent_times[keep], self._recent_hashes[keep])
            self._recent = _BandedSegment(self._recent_hashes, self._bands) if len(self._recent_hashes) else None
        gone = self._alive & (self._media == media_id)
        self._alive &= ~gone
        self._dead += int(gone.sum())
        if self._dead and self._dead * 4 >= len(self._hashes):
            self._set_main(self._media[self._alive], self._times[self._alive], self._hashes[self._alive])

    def __len__(self) -> int:
        self._consolidate()
        return len(self._hashes) - self._dead + len(self._recent_hashes)

    def media_ids(self) -> set[int]:
        self._consolidate()
        return set(np.unique(self._media[self._alive]).tolist()) | set(np.unique(self._recent_media).tolist())

    @staticmethod
    def _search(segment: _BandedSegment | None, stored: np.ndarray, query: np.ndarray,
                max_distance: int, cap: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if segment is None or segment.probe_cost(max_distance, cap) * 4 >= len(stored):
            return _brute_force(query, stored, max_distance)
        return segment.query(query, max_distance, cap)

    def query(self, hashes: np.ndarray, max_distance: int, complete_to: int | None = None) -> IndexHits:
        self._consolidate()
        query = np.asarray(hashes, dtype=np.uint64)
        if not len(query) or not len(self) or max_distance < 0:
            return _empty_hits()
        cap = probe_cap(self._bands, max_distance, complete_to)
        # frames of one video often repeat a hash: look each distinct hash up once
        distinct, inverse = np.unique(query, return_inverse=True)
        qi, rows, dist = self._search(self._main, self._hashes, distinct, max_distance, cap)
        live = self._alive[rows]
        qi, rows, dist = qi[live], rows[live], dist[live]
        rqi, rrows, rdist = self._search(self._recent, self._recent_hashes, distinct, max_distance, cap)
        media = np.concatenate([self._media[rows], self._recent_media[rrows]])
        times = np.concatenate([self._times[rows], self._recent_times[rrows]])
        rows = np.concatenate([rows, rrows + len(self._hashes)])  # recent rows come after main's
        qi = np.concatenate([qi, rqi])
        dist = np.concatenate([dist, rdist])
        # back to query positions: one hit per query frame holding that hash
        order = np.argsort(inverse, kind="stable")
        counts = np.bincount(inverse, minlength=len(distinct))
        first = np.cumsum(counts) - counts
        per_hit = counts[qi]
        which = np.repeat(np.arange(len(qi)), per_hit)
        nth = np.arange(len(which)) - np.repeat(np.cumsum(per_hit) - per_hit, per_hit)
        positions = order[first[qi[which]] + nth].astype(np.int64)
        ordered = which[np.lexsort((rows[which], positions))]  # BruteForceIndex's order: query, then insertion
        positions = np.sort(positions)
        return IndexHits(positions, media[ordered], times[ordered], dist[ordered].astype(np.int16))

    def query_media(self, hashes: np.ndarray, max_distance: int, media_ids: set[int]) -> IndexHits:
        """`query`'s hits of the given media only (same hits, same order), comparing with their frames alone.

        One pass over the media column finds their rows (milliseconds at 10^7 rows); the cost of
        the comparison grows with those media, not with the store.
        """
        self._consolidate()
        ids = np.fromiter(media_ids, dtype=np.int64)
        main = np.flatnonzero(self._alive & np.isin(self._media, ids))
        recent = np.flatnonzero(np.isin(self._recent_media, ids))
        return _subset_hits(hashes, np.concatenate([self._media[main], self._recent_media[recent]]),
                            np.concatenate([self._times[main], self._recent_times[recent]]),
                            np.concatenate([self._hashes[main], self._recent_hashes[recent]]), max_distance)

    def nbytes(self) -> int:
        """Memory held by the stored columns and both segments' bands."""
        self._consolidate()
        columns = (self._media, self._times, self._hashes, self._alive,
                   self._recent_media, self._recent_times, self._recent_hashes)
        bands = [a for seg in (self._main, self._recent) if seg for a in (*seg.offsets, *seg.rows, *seg.hashes)]
        return sum(a.nbytes for a in (*columns, *bands))

    def serialize(self) -> bytes:
        """The live rows in BruteForceIndex's format: either class loads the other's bytes."""
        self._consolidate()
        return _save_columns(np.concatenate([self._media[self._alive], self._recent_media]),
                             np.concatenate([self._times[self._alive], self._recent_times]),
                             np.concatenate([self._hashes[self._alive], self._recent_hashes]))

    @classmethod
    def deserialize(cls, blob: bytes, bands: int = DEFAULT_BANDS) -> MultiIndexHashIndex:
        return cls.build(*_load_columns(blob), bands=bands)


INDEX_KINDS = {"brute": BruteForceIndex, "mih": MultiIndexHashIndex}
MIH_FROM_ROWS = 4096  # stored frames from which "auto" picks multi-index hashing (it wins from ~3,000)


def index_kind_for(rows: int) -> str:
    """The kind "auto" resolves to for a store of `rows` frames."""
    return "mih" if rows >= MIH_FROM_ROWS else "brute"


def make_index(kind: str = "auto", media_ids: np.ndarray | None = None, timestamps: np.ndarray | None = None,
               hashes: np.ndarray | None = None) -> BruteForceIndex | MultiIndexHashIndex:
    """An index of `kind` ("brute", "mih" or "auto"), built from the columns when given.

    Example: ``make_index("auto", frames.media_ids, frames.timestamps, frames.hashes)``.
    """
    rows = 0 if hashes is None else len(hashes)
    name = index_kind_for(rows) if kind == "auto" else kind
    if name not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}: use one of 'auto', {', '.join(map(repr, INDEX_KINDS))}")
    cls = INDEX_KINDS[name]
    if hashes is None:
        return cls()
    return cls.build(media_ids, timestamps, hashes)
