"""Which band layout for the on-disk index, and is an approximate first pass worth it?

On a clustered store (`benchmarks.scale_store`, real pHash sequences
perturbed) this times the first stage of the matcher's two-stage lookup (every
stored frame within 8 bits of a 200-hash query video) for `SegmentedHashIndex`
with 3, 4 or 5 bands, bits interleaved or contiguous (and how big the
buckets it probes are), against today's
`MultiIndexHashIndex` (4 contiguous 16-bit bands, in memory) measured in the
same run, and checks each finds the same candidate videos as brute force.
Then it caps the probe radius per band (``probe_radius`` 1 and 0, an
approximate first stage) and reports what that saves and what it loses: the
share of brute force's candidate videos found, whether the query's source
video is found, and the share of the final 14-bit hits kept.  Last, the
one-stage lookup (the whole store at 14 bits) for both indexes, and how much
of the first stage's work huge buckets cause (would capping them pay?).

Times are CPU time (user + system) of this process, median over the queries
of a second round, steadier than wall time on a shared machine.

Run from the repository root:

    python benchmarks/segment_layouts.py --rows 10000000 [--queries 20] [--dir /work/layouts]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.hash_pool import load_pool  # noqa: E402
from benchmarks.scale_store import Store  # noqa: E402
from fingerprints.index import MultiIndexHashIndex, _brute_force, _probe_masks  # noqa: E402
from fingerprints.segments import SegmentedHashIndex, band_keys  # noqa: E402

FIRST_PASS, MAX_DISTANCE, SEED = 8, 14, 1
CONFIGS = [(3, "interleaved"), (3, "contiguous"), (4, "interleaved"), (4, "contiguous"), (5, "interleaved")]


def cpu_median(run, queries: list[np.ndarray]) -> tuple[float, list]:
    """(median CPU ms of a second round, the second round's results)."""
    for _ in range(2):
        times, results = [], []
        for q in queries:
            start = time.process_time()
            results.append(run(q))
            times.append(time.process_time() - start)
    return float(np.median(times) * 1e3), results


def bucket_figures(sizes: list[np.ndarray]) -> str:
    """Largest bucket, and the mean size of the bucket a stored hash sits in, in the worst band:
    what an exact probe of a query near stored footage meets (uniform hashes: the store over 2^key bits)."""
    met = max(float((s.astype(np.float64) ** 2).sum() / s.sum()) for s in sizes)
    return f"{max(int(s.max()) for s in sizes):,} | {met:,.0f}"


def big_bucket_shares(index: SegmentedHashIndex, queries: list[np.ndarray]) -> np.ndarray:
    """Per query, the share of the rows the exact first stage checks that sit in buckets of > 256 and > 1,024 rows."""
    segment = index._view.segments[0]
    radii = segment.radii(FIRST_PASS, None)
    out = []
    for q in queries:
        checked = np.zeros(3)
        for band, radius in enumerate(radii):
            keys = band_keys(np.unique(q), segment.bands, segment.layout, band, segment.key_bits[band])
            probes = (keys.astype(np.int64)[:, None] ^ _probe_masks(segment.key_bits[band], radius)[None, :]).ravel()
            sizes = segment.offsets[band][probes + 1].astype(np.int64) - segment.offsets[band][probes]
            checked += [sizes.sum(), sizes[sizes > 256].sum(), sizes[sizes > 1024].sum()]
        out.append(checked[1:] / max(1, checked[0]))
    return np.array(out)


def videos(hits) -> set[int]:
    return set(np.unique(hits.media_ids).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=lambda s: int(float(s)), default=10_000_000)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="where the indexes go (default: a temporary directory)")
    args = parser.parse_args()
    store = Store(load_pool(), args.rows, SEED)
    media, times, hashes = (np.concatenate(c) for c in list(zip(*store.chunks()))[1:])
    drawn = [store.query(s) for s in range(args.queries)]
    queries = [q for q, _ in drawn]
    expected = []
    for q in queries:
        _, si, _ = _brute_force(q, hashes, FIRST_PASS)
        expected.append(set(np.unique(media[si]).tolist()))
    print(f"{args.rows:,} rows, {args.queries} query videos of 200 hashes; brute force's candidate videos at "
          f"{FIRST_PASS} bits: median {np.median([len(e) for e in expected]):.0f}, max {max(len(e) for e in expected)}\n")
    print("| index | bands | layout | first stage ms (CPU, p50) | same videos as brute force | disk or memory bytes/row "
          "| largest bucket, rows | bucket rows met by a stored hash (worst band) |")
    print("|---|---:|---|---:|---|---:|---:|---:|")
    mih = MultiIndexHashIndex.build(media, times, hashes)
    ms, found = cpu_median(lambda q, index=mih: index.query(q, FIRST_PASS), queries)
    one_stage = {"MultiIndexHashIndex": cpu_median(lambda q: mih.query(q, MAX_DISTANCE), queries[:5])[0]}
    print(f"| MultiIndexHashIndex (memory) | 4 | contiguous | {ms:.1f} | "
          f"{all(videos(h) == e for h, e in zip(found, expected))} | {mih.nbytes() / args.rows:.0f} | "
          f"{bucket_figures([np.diff(o) for o in mih._main.offsets])} |")
    del mih
    root = args.dir or Path(tempfile.mkdtemp(prefix="layouts-"))
    for bands, layout in CONFIGS:
        directory = root / f"{bands}-{layout}"
        shutil.rmtree(directory, ignore_errors=True)
        index = SegmentedHashIndex.build(directory, [(np.arange(len(hashes)) + 1, media, times, hashes)],
                                         bands=bands, layout=layout)
        ms, found = cpu_median(lambda q, index=index: index.query(q, FIRST_PASS), queries)
        sizes = [np.diff(o) for o in index._view.segments[0].offsets]
        print(f"| SegmentedHashIndex | {bands} | {layout} | {ms:.1f} | "
              f"{all(videos(h) == e for h, e in zip(found, expected))} | {index.disk_bytes() / args.rows:.1f} | "
              f"{bucket_figures(sizes)} |", flush=True)
        if (bands, layout) == CONFIGS[0]:
            kept = index
        else:
            index.close()
            shutil.rmtree(directory)
    print("\n| first stage | ms (CPU, p50) | candidate videos found (mean, min) | source video found | "
          "final hits kept (mean, min) |")
    print("|---|---:|---|---|---|")
    exact_final = [kept.query_media(q, MAX_DISTANCE, e) for q, e in zip(queries, expected)]
    for radius in (None, 1, 0):
        ms, found = cpu_median(lambda q, radius=radius: kept.query(q, FIRST_PASS, probe_radius=radius), queries)
        share = [len(videos(h) & e) / len(e) if e else 1.0 for h, e in zip(found, expected)]
        source = sum(m in videos(h) for h, (_, m) in zip(found, drawn))
        final = [len(kept.query_media(q, MAX_DISTANCE, videos(h))) / max(1, len(x))
                 for q, h, x in zip(queries, found, exact_final)]
        print(f"| {'exact' if radius is None else f'probe_radius={radius}'} | {ms:.1f} | {np.mean(share):.3f}, "
              f"{np.min(share):.3f} | {source}/{len(drawn)} | {np.mean(final):.3f}, {np.min(final):.3f} |")
    one_stage["SegmentedHashIndex"] = cpu_median(lambda q: kept.query(q, MAX_DISTANCE), queries[:5])[0]
    print(f"\nWhole-store lookup at {MAX_DISTANCE} bits (the one-stage lookup), 5 queries, ms of CPU (p50): "
          + ", ".join(f"{name} {ms:.0f}" for name, ms in one_stage.items()))
    shares = big_bucket_shares(kept, queries)
    print("Share of the exact first stage's candidates that come from buckets of more than 256 / 1,024 rows: "
          f"{np.mean(shares[:, 0]):.3f} / {np.mean(shares[:, 1]):.3f} (mean), "
          f"{shares[:, 0].max():.3f} / {shares[:, 1].max():.3f} (max)")
    kept.close()
    if args.dir is None:
        shutil.rmtree(root)


if __name__ == "__main__":
    main()
