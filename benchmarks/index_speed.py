"""Frame-index speed: multi-index hashing against brute force, up to 10 million frames.

The issue asks for a path to answering ``find-earliest`` quickly as the store
grows, with no exhaustive comparison against every stored frame.  This times
one query video (200 frame hashes at the matcher's distance, 14 bits) against
stores of 10^5, 10^6 and 10^7 frame hashes, for `BruteForceIndex` (the
baseline, measured in the same run) and `MultiIndexHashIndex`, and checks that
both return identical hits.  It also times building, adding 1,000 frames to the
largest index (and the merge that adds eventually trigger), and counts memory
per stored hash.

Two kinds of store:

- ``uniform``: independent random 64-bit hashes, the best case for banding.
- ``phash``: built from real pHashes of the chair clips (fingerprinted once,
  cached in ``benchmarks/.cache/``).  Real pHashes are not uniform (the DC bit
  is always set, bits are correlated) and frames of one shot are near-copies, so
  band values cluster.  Each synthetic video is 240 frames in shots of 24; a
  shot starts at a real pHash with each of its other 63 bits flipped with
  probability 0.2, and drifts by one random bit every other frame.

The query is a re-upload: 150 consecutive frames of one stored video, each with
about 4 bits flipped (re-encoding noise), then 50 frames of footage not in the
store.  Times are the best of ``--repeat`` passes (brute force above 10^6 frames
runs once: it takes a minute); CPU time is this process's user + system time,
less disturbed by other work on a shared machine than wall time.

Run from the repository root:

    python benchmarks/index_speed.py [--sizes 100000,1000000,10000000] [--bands 4,5,6] [--json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from corpora import chair_dir  # noqa: E402

from fingerprints.index import BruteForceIndex, IndexHits, MultiIndexHashIndex  # noqa: E402

DEFAULT_FILES = str(chair_dir() / "chair-*.mp4")
CACHE = REPO / "benchmarks" / ".cache" / "index_speed_phashes.npy"
VIDEO_FRAMES, SHOT_FRAMES = 240, 24
DC_BIT = np.uint64(1 << 63)


@dataclass
class Row:
    store: str
    size: int
    method: str
    build_s: float
    query_wall_ms: float
    query_cpu_ms: float
    hits: int
    identical: bool | None  # same hits as brute force (None for brute force itself)
    bytes_per_hash: float
    add_1k_ms: float | None = None  # add() of 1,000 frames, then the query that absorbs them (wall)
    query_after_add_ms: float | None = None  # CPU
    merge_ms: float | None = None  # merging a full recent segment into main
    videos: int | None = None  # two-stage lookups: stored videos compared in full at max_distance


def timed(fn: Callable[[], object], repeat: int) -> tuple[object, float, float]:
    """(result, best wall seconds, best CPU seconds) over `repeat` calls."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - w)
        best_cpu = min(best_cpu, time.process_time() - c)
    return result, best_wall, best_cpu


def real_phashes(files: str) -> np.ndarray:
    if CACHE.exists():
        return np.load(CACHE)
    from fingerprints.video import fingerprint_video

    hashes = [f.hash for path in sorted(glob.glob(files)) for f in fingerprint_video(path).frames]
    if not hashes:
        sys.exit(f"no videos match {files}: pass --files, or --stores uniform")
    out = np.unique(np.array(hashes, dtype=np.uint64))
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.save(CACHE, out)
    return out


def random_bits(rng: np.random.Generator, n: int, p: float, bits: int = 63) -> np.ndarray:
    """n hashes with each of the low `bits` bits set with probability p."""
    out = np.zeros(n, dtype=np.uint64)
    for start in range(0, n, 1 << 20):
        chunk = rng.random((min(n - start, 1 << 20), bits)) < p
        out[start:start + len(chunk)] = (chunk.astype(np.uint64) << np.arange(bits, dtype=np.uint64)).sum(
            axis=1, dtype=np.uint64)
    return out


def phash_store(rng: np.random.Generator, n: int, real: np.ndarray) -> np.ndarray:
    shots = -(-n // SHOT_FRAMES)
    starts = real[rng.integers(0, len(real), shots)] ^ random_bits(rng, shots, 0.2)
    steps = np.where(rng.random(n) < 0.5, np.uint64(1) << rng.integers(0, 63, n).astype(np.uint64), np.uint64(0))
    steps[::SHOT_FRAMES] = 0
    drift = np.bitwise_xor.accumulate(steps)
    shot = np.arange(n) // SHOT_FRAMES
    return starts[shot] ^ drift ^ drift[shot * SHOT_FRAMES]


def make_store(kind: str, n: int, real: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hashes = (rng.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True) if kind == "uniform"
              else phash_store(rng, n, real))
    frame = np.arange(n)
    return frame // VIDEO_FRAMES, (frame % VIDEO_FRAMES) * 0.25, hashes


def make_query(kind: str, stored: np.ndarray, real: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    video = int(rng.integers(0, len(stored) // VIDEO_FRAMES))
    first = video * VIDEO_FRAMES + int(rng.integers(0, VIDEO_FRAMES - 150))
    noisy = stored[first:first + 150] ^ random_bits(rng, 150, 4 / 63)
    fresh = (rng.integers(0, 2**64 - 1, 50, dtype=np.uint64, endpoint=True) if kind == "uniform"
             else phash_store(rng, 50, real))
    return np.concatenate([noisy, fresh])


def hit_rows(hits: IndexHits) -> list[tuple]:
    return list(zip(hits.query_positions.tolist(), hits.media_ids.tolist(), hits.timestamps.tolist(),
                    hits.distances.tolist()))


def measure(kind: str, size: int, bands: list[int], real: np.ndarray, repeat: int, max_distance: int,
            brute_repeat: int) -> list[Row]:
    media, times, hashes = make_store(kind, size, real, seed=size)
    query = make_query(kind, hashes, real, seed=size)
    rows = []
    brute, b_build_w, _ = timed(lambda: BruteForceIndex.build(media, times, hashes), 1)
    reference, wall, cpu = timed(lambda: brute.query(query, max_distance), brute_repeat)
    rows.append(Row(kind, size, "brute", b_build_w, wall * 1e3, cpu * 1e3, len(reference), None,
                    brute.nbytes() / size))
    expected = hit_rows(reference)
    del brute
    for m in bands:
        index, build_w, _ = timed(lambda: MultiIndexHashIndex.build(media, times, hashes, bands=m), 1)
        hits, wall, cpu = timed(lambda: index.query(query, max_distance), repeat)
        row = Row(kind, size, f"mih-{m}", build_w, wall * 1e3, cpu * 1e3, len(hits), hit_rows(hits) == expected,
                  index.nbytes() / size)
        staged = (two_stage(kind, size, m, index, query, max_distance, args.first_pass, reference, repeat)
                  if args.first_pass else None)  # before the adds below change the index
        if size == max(args.sizes):
            new = np.random.default_rng(7).integers(0, 2**64 - 1, 1000, dtype=np.uint64, endpoint=True)
            w = time.perf_counter()
            for k in range(4):  # four videos of 250 frames
                index.add(10**9 + k, np.arange(250) * 0.25, new[k * 250:(k + 1) * 250])
            index.query(query[:1], max_distance)  # absorbs the added rows
            row.add_1k_ms = (time.perf_counter() - w) * 1e3
            _, _, cpu = timed(lambda: index.query(query, max_distance), repeat)
            row.query_after_add_ms = cpu * 1e3
            fill = index._merge_at() - len(index._recent_hashes) - 1
            index.add(10**9 + 9, np.zeros(fill), np.random.default_rng(8).integers(0, 2**63, fill).astype(np.uint64))
            len(index)  # fills the recent segment...
            w = time.perf_counter()
            index.add(10**9 + 10, np.zeros(1), np.zeros(1, np.uint64))
            len(index)  # ...and this one frame merges it into main
            assert len(index._recent_hashes) == 0
            row.merge_ms = (time.perf_counter() - w) * 1e3
        rows.append(row)
        if staged is not None:
            rows.append(staged)
        del index
    return rows


def two_stage(kind: str, size: int, bands: int, index: MultiIndexHashIndex, query: np.ndarray, max_distance: int,
              first: int, reference: IndexHits, repeat: int) -> Row:
    """`fingerprints.align._lookup`: videos with a frame within `first` bits, then all their frames at max_distance.

    "same hits": brute force's hits of those videos, exactly (the hits of other videos are not wanted).
    """
    def lookup() -> tuple[IndexHits, set[int]]:
        videos = set(np.unique(index.query(query, first).media_ids).tolist())
        return index.query_media(query, max_distance, videos), videos

    (hits, videos), wall, cpu = timed(lookup, repeat)
    keep = np.isin(reference.media_ids, list(videos))
    expected = IndexHits(*(getattr(reference, f)[keep] for f in ("query_positions", "media_ids", "timestamps",
                                                                 "distances")))
    return Row(kind, size, f"mih-{bands} two-stage@{first}", 0.0, wall * 1e3, cpu * 1e3, len(hits),
               hit_rows(hits) == hit_rows(expected), index.nbytes() / size, videos=len(videos))


def table(rows: list[Row]) -> str:
    lines = ["| store | frames | index | build s | query ms (wall) | query ms (CPU) | vs brute (CPU) | hits | "
             "same hits | bytes/hash |", "|---|---:|---|---:|---:|---:|---:|---:|---|---:|"]
    brute_cpu = {(r.store, r.size): r.query_cpu_ms for r in rows if r.method == "brute"}
    for r in rows:
        ratio = r.query_cpu_ms / brute_cpu[(r.store, r.size)]
        same = "-" if r.identical is None else ("yes" if r.identical else "**NO**")
        hits = f"{r.hits:,}" + ("" if r.videos is None else f" ({r.videos:,} videos)")
        lines.append(f"| {r.store} | {r.size:,} | {r.method} | {r.build_s:.2f} | {r.query_wall_ms:,.1f} | "
                     f"{r.query_cpu_ms:,.1f} | {ratio:.4f} | {hits} | {same} | {r.bytes_per_hash:.0f} |")
    adds = [r for r in rows if r.add_1k_ms is not None]
    if adds:
        lines += ["", "| store | frames | index | add 1k frames ms | query after add ms (CPU) | merge of a full "
                  "recent segment ms |", "|---|---:|---|---:|---:|---:|"]
        lines += [f"| {r.store} | {r.size:,} | {r.method} | {r.add_1k_ms:.1f} | {r.query_after_add_ms:.1f} | "
                  f"{r.merge_ms:,.0f} |" for r in adds]
    return "\n".join(lines)


def main() -> None:
    global args
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,10000000",
                        type=lambda s: [int(x) for x in s.split(",")], help="stored frames, comma separated")
    parser.add_argument("--bands", default="5", type=lambda s: [int(x) for x in s.split(",")],
                        help="band counts of MultiIndexHashIndex to time, comma separated")
    parser.add_argument("--stores", default="uniform,phash", type=lambda s: s.split(","))
    parser.add_argument("--files", default=DEFAULT_FILES, help="videos whose pHashes seed the phash store")
    parser.add_argument("--max-distance", type=int, default=14)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--first-pass", type=int, default=0, metavar="BITS",
                        help="also time the matcher's two-stage lookup (videos within BITS, then max distance)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    real = real_phashes(args.files) if "phash" in args.stores else np.zeros(0, np.uint64)
    print(f"load average at start: {os.getloadavg()[0]:.1f}; real pHashes: {len(real)}", file=sys.stderr)
    rows: list[Row] = []
    for size in args.sizes:
        for kind in args.stores:
            rows += measure(kind, size, args.bands, real, args.repeat, args.max_distance,
                            args.repeat if size <= 1_000_000 else 1)
            print(table([r for r in rows if (r.store, r.size) == (kind, size)]), file=sys.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "peak_rss_mb": peak_mb}, indent=1))
    else:
        print(table(rows))
        print(f"\npeak RSS of this process: {peak_mb:,.0f} MB; load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
