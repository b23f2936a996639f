"""Synthetic frame stores of any size, clustered like a real store, generated in streamed chunks.

Each stored video is a window of one real pHash sequence from
`benchmarks.hash_pool` (real footage, or a rendered low-detail sequence:
gradient, night, talking head, slides), perturbed as another upload of
similar footage would be:

- the whole video is off its source by 0-10 random bits (a fixed mask;
  the DC bit is never flipped, as it is always set in a real pHash);
- it drifts slowly: each frame toggles one more random bit with probability
  `DRIFT` (the changes accumulate along the video);
- each frame has re-encoding noise: one random bit flipped with probability 1/2.

So many stored hashes share band values (a pool of ~10^5 real hashes
seeds every video), as in a real store where low-detail frames and reposts
of the same footage pile up.  Videos are drawn from the pool's kinds with
`KIND_WEIGHTS`, 60-140 frames each, media ids in storage order and row ids
counting frames from 1, so a chunk is what the frames table hands out.

A query is a re-upload: 100 consecutive frames of a stored video with about
4 bits of noise each, then 100 frames of a video not in the store (another
draw from the same pool), 200 hashes in all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

KIND_WEIGHTS = {"footage": 0.4, "gradient": 0.15, "night": 0.15, "talking_head": 0.15, "slides": 0.15}
MIN_FRAMES, MAX_FRAMES = 60, 140
MAX_FLIPS = 10
DRIFT = 0.1
CHUNK_VIDEOS = 20_000
QUERY_STORED, QUERY_FRESH = 100, 100


def random_bits(rng: np.random.Generator, n: int, p: float, bits: int = 63) -> np.ndarray:
    """n masks with each of the low `bits` bits set with probability p."""
    chosen = rng.random((n, bits)) < p
    return (chosen.astype(np.uint64) << np.arange(bits, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def exact_flips(rng: np.random.Generator, counts: np.ndarray, bits: int = 63) -> np.ndarray:
    """Masks with exactly counts[i] of the low `bits` bits set."""
    ranks = rng.random((len(counts), bits)).argsort(axis=1).argsort(axis=1)
    chosen = ranks < counts[:, None]
    return (chosen.astype(np.uint64) << np.arange(bits, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


def one_bit(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    """Each of n masks is one random bit (below the DC bit) with probability p, else 0."""
    return np.where(rng.random(n) < p, np.uint64(1) << rng.integers(0, 63, n).astype(np.uint64), np.uint64(0))


@dataclass(frozen=True)
class Videos:
    media: np.ndarray  # per row
    times: np.ndarray
    hashes: np.ndarray
    lengths: np.ndarray  # per video


class Store:
    """Deterministic store of `rows` frame rows seeded by `seed`; `chunks()` streams it."""

    def __init__(self, pool: dict[str, np.ndarray], rows: int, seed: int) -> None:
        self.pool, self.rows, self.seed = pool, rows, seed
        lengths = np.diff(pool["starts"])
        kinds = pool["kinds"]
        weights = np.array([KIND_WEIGHTS[str(k)] / np.sum(kinds == k) for k in kinds])
        self.sequence_weights = weights / weights.sum()
        self.sequence_lengths = lengths

    def videos(self, rng: np.random.Generator, count: int, first_media: int) -> Videos:
        pool = self.pool
        sequence = rng.choice(len(self.sequence_lengths), count, p=self.sequence_weights)
        lengths = rng.integers(MIN_FRAMES, MAX_FRAMES + 1, count)
        seq_len = self.sequence_lengths[sequence]
        start = rng.integers(0, np.maximum(seq_len, 1))
        video = np.repeat(np.arange(count), lengths)
        nth = np.arange(len(video)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        # play the window forwards and back if the sequence is shorter than the video
        period = np.maximum(2 * seq_len[video] - 2, 1)
        step = (start[video] + nth) % period
        step = np.where(step < seq_len[video], step, period - step)
        base = pool["hashes"][pool["starts"][sequence][video] + step]
        offset = exact_flips(rng, rng.integers(0, MAX_FLIPS + 1, count))
        drift = np.bitwise_xor.accumulate(one_bit(rng, len(video), DRIFT))
        first_row = np.cumsum(lengths) - lengths
        drift ^= np.repeat(drift[first_row], lengths)  # restart at each video
        hashes = base ^ offset[video] ^ drift ^ one_bit(rng, len(video), 0.5)
        return Videos(media=(first_media + video).astype(np.int64), times=nth * 0.25, hashes=hashes,
                      lengths=lengths)

    def chunks(self, chunk_videos: int = CHUNK_VIDEOS) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """(row_ids, media_ids, timestamps, hashes) batches, in row-id order, `rows` rows in all."""
        done, number = 0, 0
        while done < self.rows:
            rng = np.random.default_rng([self.seed, number])
            batch = self.videos(rng, chunk_videos, first_media=1 + number * chunk_videos)
            take = min(len(batch.hashes), self.rows - done)
            yield (np.arange(done + 1, done + take + 1), batch.media[:take], batch.times[:take],
                   batch.hashes[:take])
            done += take
            number += 1

    def query(self, seed: int, chunk_videos: int = CHUNK_VIDEOS) -> tuple[np.ndarray, int]:
        """(200 query hashes, the stored media the first 100 were cut from)."""
        rng = np.random.default_rng([self.seed, seed, 1])
        number = int(rng.integers(0, max(1, self.rows // (chunk_videos * MAX_FRAMES))))  # a chunk wholly stored
        batch = self.videos(np.random.default_rng([self.seed, number]), chunk_videos, 1 + number * chunk_videos)
        ends = np.cumsum(batch.lengths)
        stored_whole = ends <= self.rows if number == 0 else np.ones(chunk_videos, dtype=bool)
        video = int(rng.choice(np.flatnonzero((batch.lengths >= QUERY_STORED) & stored_whole)))
        begin = int(ends[video] - batch.lengths[video]) + int(rng.integers(0, batch.lengths[video] - QUERY_STORED + 1))
        stored = batch.hashes[begin:begin + QUERY_STORED] ^ random_bits(rng, QUERY_STORED, 4 / 63)
        fresh = self.videos(rng, 1 + QUERY_FRESH // MIN_FRAMES, first_media=-10).hashes[:QUERY_FRESH]
        return np.concatenate([stored, fresh]), int(batch.media[begin])
