"""Frame-hash indexes: which stored frames are near a query frame.

An index has four verbs: build, add, query, serialize.  `BruteForceIndex`
compares every query hash with every stored hash; it is exact, and it is the
reference every faster index is tested against.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# Elements of the query x stored distance matrix computed at once (bounds memory).
_BLOCK_ELEMENTS = 1 << 22


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

    def query(self, hashes: np.ndarray, max_distance: int) -> IndexHits: ...

    def serialize(self) -> bytes: ...

    def __len__(self) -> int: ...


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

    def query(self, hashes: np.ndarray, max_distance: int) -> IndexHits:
        self._consolidate()
        query = np.asarray(hashes, dtype=np.uint64)
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        if len(self._hashes) and len(query):
            rows = max(1, _BLOCK_ELEMENTS // len(self._hashes))
            for start in range(0, len(query), rows):
                block = query[start:start + rows]
                dist = np.bitwise_count(block[:, None] ^ self._hashes[None, :])
                qi, si = np.nonzero(dist <= max_distance)
                parts.append((qi + start, si, dist[qi, si]))
        if not parts:
            empty = np.zeros(0, dtype=np.int64)
            return IndexHits(empty, empty.copy(), np.zeros(0), np.zeros(0, dtype=np.int16))
        qi = np.concatenate([p[0] for p in parts]).astype(np.int64)
        si = np.concatenate([p[1] for p in parts])
        dist = np.concatenate([p[2] for p in parts]).astype(np.int16)
        return IndexHits(qi, self._media[si], self._times[si], dist)

    def serialize(self) -> bytes:
        self._consolidate()
        out = io.BytesIO()
        np.savez_compressed(out, media=self._media, times=self._times, hashes=self._hashes)
        return out.getvalue()

    @classmethod
    def deserialize(cls, blob: bytes) -> BruteForceIndex:
        with np.load(io.BytesIO(blob)) as data:
            return cls.build(data["media"], data["times"], data["hashes"])
