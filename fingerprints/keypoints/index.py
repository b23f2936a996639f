"""Candidate keyframes by their descriptors, without any global hash.

A query keyframe's candidates are the stored keyframes that share many
near-identical descriptors with it.  Two indexes answer the same question:

- `BruteForceKeypointIndex` compares every query descriptor with every
  stored one: the reference, exact and slow.
- `LshKeypointIndex` looks descriptors up in hash tables keyed by fixed
  subsets of their bits (locality-sensitive hashing for Hamming space): two
  descriptors a few dozen bits apart agree on a 22-bit subset often enough
  that, over a few tables, most of a copy's matching descriptors meet, while
  unrelated ones (about 128 bits apart) almost never do.  A colliding pair is
  then checked at its exact distance, so its answers are a subset of the
  reference's; the tests hold it to the reference.  Buckets crowded with
  descriptors of many keyframes (flat texture, shared graphics) are skipped:
  they say nothing about which keyframe matches.

Both return votes: for a (query keyframe, stored keyframe) pair, the number of
query descriptors with a stored descriptor of that keyframe within `radius` bits.

Memory: the LSH index holds 44 bytes per keypoint (descriptor, media id,
keyframe) plus 8 per keypoint and table (key and row), 140 bytes with the
default 12 tables: about 90 MB per indexed hour of video at the default
keypoint budget (see docs/benchmarks.md).  Wider keys (22 bits rather than
16) keep buckets small as the store grows: looking a query keyframe set up
among a million stored keypoints took 0.8 s instead of 9.6 s.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .features import DESCRIPTOR_BYTES, Keyframes

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)
_FRAME_BITS = 20  # keyframe numbers inside a media's value stay far below 2^20 (`KeypointParams.max_keyframes`)
RADIUS = 64  # bits: matching ORB descriptors of a copy are mostly within 50, unrelated ones near 128


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit distances between rows of `a` and rows of `b` of equal count (uint8, 32 bytes each)."""
    return _POPCOUNT[np.bitwise_xor(a, b)].sum(axis=-1, dtype=np.int32)


@dataclass
class KeyframeHits:
    """Votes for (query keyframe, stored media, stored keyframe) triples, one row each."""

    query_frames: np.ndarray  # int64
    media_ids: np.ndarray  # int64
    stored_frames: np.ndarray  # int64: keyframe index inside the stored media's value
    votes: np.ndarray  # int64

    @staticmethod
    def empty() -> KeyframeHits:
        z = np.zeros(0, np.int64)
        return KeyframeHits(z, z, z, z)

    def as_dict(self) -> dict[tuple[int, int, int], int]:
        return {(int(q), int(m), int(s)): int(v) for q, m, s, v in
                zip(self.query_frames, self.media_ids, self.stored_frames, self.votes)}


class _Store:
    """Every stored keypoint's descriptor and (media, keyframe), appended per media; removals are masked."""

    def __init__(self) -> None:
        self.parts: list[tuple[int, np.ndarray, np.ndarray]] = []  # (media, keyframe of each point, descriptors)
        self.media: dict[int, int] = {}  # media id -> keypoints
        self.removed: set[int] = set()
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, media_id: int, value: Keyframes) -> None:
        if media_id in self.media:
            self.remove(media_id)
            self.compact()
        self.parts.append((media_id, value.frame_of_point().astype(np.int32),
                           np.ascontiguousarray(value.descriptors, np.uint8)))
        self.media[media_id] = value.keypoint_count
        self._arrays = None

    def remove(self, media_id: int) -> None:
        if self.media.pop(media_id, None) is not None:
            self.removed.add(media_id)
            self._arrays = None

    def compact(self) -> None:
        self.parts = [p for p in self.parts if p[0] not in self.removed]
        self.removed.clear()
        self._arrays = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(media id, keyframe, descriptor) of every live keypoint."""
        if self._arrays is None:
            live = [p for p in self.parts if p[0] not in self.removed]
            if self.removed:
                self.parts, self.removed = live, set()
            media = np.concatenate([np.full(len(f), m, np.int64) for m, f, _ in live] or [np.zeros(0, np.int64)])
            frames = np.concatenate([f for _, f, _ in live] or [np.zeros(0, np.int32)])
            desc = np.concatenate([d for _, _, d in live] or [np.zeros((0, DESCRIPTOR_BYTES), np.uint8)])
            self._arrays = (media, frames, desc)
        return self._arrays

    def serialize(self, params: np.ndarray) -> bytes:
        media, frames, desc = self.arrays()
        buf = io.BytesIO()
        np.savez(buf, media=media, frames=frames, desc=desc, params=params)
        return buf.getvalue()

    def load(self, blob: bytes) -> np.ndarray:
        """Read `serialize` bytes; returns the index parameters saved with them."""
        try:
            with np.load(io.BytesIO(blob), allow_pickle=False) as z:
                media, frames, desc, params = z["media"], z["frames"], z["desc"], z["params"]
        except (ValueError, KeyError, OSError, EOFError) as exc:
            raise ValueError(f"not a keypoint index ({exc}): rebuild it from the stored values") from None
        if desc.ndim != 2 or desc.shape[1] != DESCRIPTOR_BYTES or not len(media) == len(frames) == len(desc):
            raise ValueError("keypoint index arrays do not fit together: rebuild it from the stored values")
        self.parts, self.media, self.removed = [], {}, set()
        for m in np.unique(media):
            rows = media == m
            self.parts.append((int(m), frames[rows].astype(np.int32), desc[rows]))
            self.media[int(m)] = int(rows.sum())
        self._arrays = None
        return params

    def __len__(self) -> int:
        return len(self.media)


def _votes(query_frames: np.ndarray, media: np.ndarray, frames: np.ndarray,
           query_rows: np.ndarray) -> KeyframeHits:
    """One vote per (query descriptor, stored keyframe) from matched pairs, summed per keyframe pair."""
    if not len(query_rows):
        return KeyframeHits.empty()
    # stored keyframes numbered densely, then (query descriptor, stored keyframe) and (query keyframe, ...) as one int64
    # (media, keyframe) as one int64 (keyframes per media stay below 2^20): a 1-D unique is much faster
    keyframes, slot = np.unique((media.astype(np.int64) << _FRAME_BITS) | frames.astype(np.int64),
                                return_inverse=True)
    slot = slot.ravel().astype(np.int64)
    n = len(keyframes)
    pair = np.unique(query_rows.astype(np.int64) * n + slot)
    triple, counts = np.unique(query_frames[pair // n] * n + pair % n, return_counts=True)
    q, k = triple // n, triple % n
    return KeyframeHits(q.astype(np.int64), keyframes[k] >> _FRAME_BITS, keyframes[k] & ((1 << _FRAME_BITS) - 1),
                        counts.astype(np.int64))


class BruteForceKeypointIndex:
    """Every query descriptor against every stored one (the reference)."""

    def __init__(self, radius: int = RADIUS):
        self.radius = radius
        self.store = _Store()

    def add(self, media_id: int, value: Keyframes) -> None:
        self.store.add(media_id, value)

    def remove(self, media_id: int) -> None:
        self.store.remove(media_id)

    def __len__(self) -> int:
        return len(self.store)

    def query(self, value: Keyframes, exclude: set[int] = frozenset()) -> KeyframeHits:
        media, frames, desc = self.store.arrays()
        q_frames = value.frame_of_point()
        rows_q, rows_s = [], []
        for i in range(0, len(value.descriptors), 64):
            chunk = value.descriptors[i:i + 64]
            d = _POPCOUNT[np.bitwise_xor(chunk[:, None, :], desc[None, :, :])].sum(axis=-1, dtype=np.int32)
            qi, si = np.nonzero(d <= self.radius)
            rows_q.append(qi + i)
            rows_s.append(si)
        qi = np.concatenate(rows_q or [np.zeros(0, np.int64)])
        si = np.concatenate(rows_s or [np.zeros(0, np.int64)])
        if exclude:
            keep = ~np.isin(media[si], list(exclude))
            qi, si = qi[keep], si[keep]
        return _votes(q_frames, media[si], frames[si], qi)

    def serialize(self) -> bytes:
        return self.store.serialize(np.array([self.radius], np.int64))

    @classmethod
    def deserialize(cls, blob: bytes) -> BruteForceKeypointIndex:
        index = cls()
        params = index.store.load(blob)
        index.radius = int(params[0])
        return index


class LshKeypointIndex:
    """Hash tables on fixed bit subsets of the descriptors (see the module docstring)."""

    def __init__(self, radius: int = RADIUS, tables: int = 12, bits: int = 22, max_bucket: int = 500,
                 seed: int = 20261130):
        if not 0 < bits <= 32:
            raise ValueError(f"bits={bits}: keys are 1 to 32 bits of the descriptor")
        self.radius, self.tables, self.bits, self.max_bucket = radius, tables, bits, max_bucket
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.positions = np.stack([rng.choice(8 * DESCRIPTOR_BYTES, bits, replace=False) for _ in range(tables)])
        self.store = _Store()
        self._tables: list[tuple[np.ndarray, np.ndarray]] | None = None  # per table: sorted keys, rows

    def add(self, media_id: int, value: Keyframes) -> None:
        self.store.add(media_id, value)
        self._tables = None

    def remove(self, media_id: int) -> None:
        self.store.remove(media_id)
        self._tables = None

    def __len__(self) -> int:
        return len(self.store)

    def _keys(self, desc: np.ndarray) -> np.ndarray:
        """(tables, n) uint32 keys."""
        out = np.empty((self.tables, len(desc)), np.uint32)
        weights = (1 << np.arange(self.bits, dtype=np.int64))
        for start in range(0, len(desc), 65536):
            bits = np.unpackbits(desc[start:start + 65536], axis=1)
            for t in range(self.tables):
                out[t, start:start + len(bits)] = bits[:, self.positions[t]].astype(np.int64) @ weights
        return out

    def _build(self) -> list[tuple[np.ndarray, np.ndarray]]:
        if self._tables is None:
            _, _, desc = self.store.arrays()
            keys = self._keys(desc)
            self._tables = []
            for t in range(self.tables):
                order = np.argsort(keys[t], kind="stable")
                self._tables.append((keys[t][order], order.astype(np.int32)))
        return self._tables

    def query(self, value: Keyframes, exclude: set[int] = frozenset()) -> KeyframeHits:
        media, frames, desc = self.store.arrays()
        if not len(desc) or not value.keypoint_count:
            return KeyframeHits.empty()
        tables = self._build()
        q_keys = self._keys(value.descriptors)
        rows_q, rows_s = [], []
        for t, (keys, rows) in enumerate(tables):
            lo = np.searchsorted(keys, q_keys[t], side="left")
            hi = np.searchsorted(keys, q_keys[t], side="right")
            size = hi - lo
            ok = (size > 0) & (size <= self.max_bucket)
            qi = np.repeat(np.flatnonzero(ok), size[ok])
            if not len(qi):
                continue
            # positions lo..hi-1 for every kept query descriptor
            starts = np.repeat(lo[ok], size[ok])
            within = np.arange(len(qi)) - np.repeat(np.cumsum(size[ok]) - size[ok], size[ok])
            rows_q.append(qi)
            rows_s.append(rows[starts + within])
        if not rows_q:
            return KeyframeHits.empty()
        qi, si = np.concatenate(rows_q).astype(np.int64), np.concatenate(rows_s).astype(np.int64)
        pair = np.unique(qi * len(desc) + si)
        qi, si = pair // len(desc), pair % len(desc)
        near = hamming(value.descriptors[qi], desc[si]) <= self.radius
        qi, si = qi[near], si[near]
        if exclude:
            keep = ~np.isin(media[si], list(exclude))
            qi, si = qi[keep], si[keep]
        return _votes(value.frame_of_point(), media[si], frames[si], qi)

    def serialize(self) -> bytes:
        """The stored keypoints and the index's parameters; the tables are rebuilt on the first query."""
        return self.store.serialize(np.array([self.radius, self.tables, self.bits, self.max_bucket, self.seed],
                                             np.int64))

    @classmethod
    def deserialize(cls, blob: bytes) -> LshKeypointIndex:
        store = _Store()
        params = store.load(blob)
        if len(params) != 5:
            raise ValueError("not a keypoint LSH index (its parameters are missing): rebuild it from the stored values")
        index = cls(*(int(x) for x in params))
        index.store = store
        return index
