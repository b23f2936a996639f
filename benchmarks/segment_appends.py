"""An index grown one ingest at a time: how many segments the merges leave, and what they cost a lookup.

A workspace catches its `SegmentedHashIndex` up once per ingested video, so a
daemon's index is built from thousands of small appends of every size.  This
script appends `--rows` frame rows of `benchmarks.scale_store` videos (real
pHash sequences, perturbed) one video at a time (or `--append N` rows at a
time), then times lookups of 10 queries of 200 hashes at 8 bits (the first
stage) and at 14 bits complete to 11 (the crowd lookup), against the same
index compacted as the daemon's periodic job does (`merge(max_segments=1)` as it ships) and
after `merge(full=True)` (one segment: the baseline, in the same run).

    python benchmarks/segment_appends.py --rows 1000000 [--append 0] [--max-segments 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.scale import load_pool  # noqa: E402
from benchmarks.scale_store import Store  # noqa: E402
from fingerprints.segments import SegmentedHashIndex  # noqa: E402

QUERIES = 10


def lookups(index: SegmentedHashIndex, queries: list[np.ndarray]) -> tuple[float, float]:
    """Mean ms per query at 8 bits and at 14 bits complete to 11 (one warm-up query first)."""
    index.query(queries[0], 8)
    index.query(queries[0], 14, complete_to=11)
    out = []
    for bits, complete in ((8, None), (14, 11)):
        started = time.perf_counter()
        for q in queries:
            index.query(q, bits, complete_to=complete)
        out.append((time.perf_counter() - started) / len(queries) * 1e3)
    return out[0], out[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="frame rows appended")
    parser.add_argument("--append", type=int, default=0, help="rows per append (0: one video per append)")
    parser.add_argument("--max-segments", type=int, default=1,
                        help="the daemon's compaction to this many segments, measured too (default 1, as it ships)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    store = Store(load_pool(), args.rows, 1)
    queries = [store.query(seed)[0] for seed in range(QUERIES)]
    with tempfile.TemporaryDirectory(prefix="segment-appends-") as scratch:
        index = SegmentedHashIndex(scratch)
        started, appends = time.perf_counter(), 0
        for rows, media, times, hashes in store.chunks():
            if args.append:
                cuts = np.arange(args.append, len(rows), args.append)
            else:
                cuts = np.flatnonzero(np.diff(media)) + 1
            for part in zip(*(np.split(c, cuts) for c in (rows, media, times, hashes))):
                index.append(*part)
                appends += 1
        out = {"rows": args.rows, "appends": appends, "append_s": round(time.perf_counter() - started, 1),
               "segments": len(index.segment_sizes())}
        out["lookup8_ms"], out["lookup14_ms"] = lookups(index, queries)
        started = time.perf_counter()
        index.merge(max_segments=args.max_segments)  # what the daemon's periodic job does
        out["compact_s"] = round(time.perf_counter() - started, 2)
        out["compacted_segments"] = len(index.segment_sizes())
        out["compacted_lookup8_ms"], out["compacted_lookup14_ms"] = lookups(index, queries)
        index.merge(full=True)
        out["merged_lookup8_ms"], out["merged_lookup14_ms"] = lookups(index, queries)
        index.close()
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{out['rows']:,} rows in {out['appends']:,} appends ({out['append_s']} s): {out['segments']} segments; "
              f"lookup at 8 bits {out['lookup8_ms']:.1f} ms, merged into one {out['merged_lookup8_ms']:.1f} ms "
              f"({out['lookup8_ms'] / out['merged_lookup8_ms']:.1f}x); at 14 bits {out['lookup14_ms']:.1f} ms, "
              f"merged {out['merged_lookup14_ms']:.1f} ms ({out['lookup14_ms'] / out['merged_lookup14_ms']:.1f}x)")
        print(f"compacted to {out['compacted_segments']} segments in {out['compact_s']} s (the daemon's job, "
              f"--max-segments {args.max_segments}): at 8 bits {out['compacted_lookup8_ms']:.1f} ms "
              f"({out['compacted_lookup8_ms'] / out['merged_lookup8_ms']:.1f}x one segment), at 14 bits "
              f"{out['compacted_lookup14_ms']:.1f} ms ({out['compacted_lookup14_ms'] / out['merged_lookup14_ms']:.1f}x)")


if __name__ == "__main__":
    main()
