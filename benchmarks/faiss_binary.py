"""FAISS's binary indexes against SegmentedHashIndex on the first stage of the two-stage lookup.

An option measured, not a dependency: ``pip install faiss-cpu`` (1.15.1 was
measured; run it in a virtual environment with ``--system-site-packages`` to
keep it out of the project's).  On a clustered store (`benchmarks.scale_store`)
it times a range search at 8 bits for 10 query videos of 200 hashes, one
thread, and counts the share of the exact (query, media, time) pairs each
index returns.  FAISS's binary range search returns distances strictly below
its radius, so 9 is passed for "within 8".

    python benchmarks/faiss_binary.py --rows 10000000
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
from fingerprints.segments import SegmentedHashIndex  # noqa: E402

FIRST_PASS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=lambda s: int(float(s)), default=10_000_000)
    parser.add_argument("--queries", type=int, default=10)
    parser.add_argument("--flat-queries", type=int, default=2, help="queries for IndexBinaryFlat (a full scan)")
    args = parser.parse_args()
    try:
        import faiss
    except ImportError:
        sys.exit("faiss is not installed: pip install faiss-cpu (in a virtual environment)")
    faiss.omp_set_num_threads(1)
    store = Store(load_pool(), args.rows, seed=1)
    media, times, hashes = (np.concatenate(c) for c in list(zip(*store.chunks()))[1:])
    queries = [store.query(s)[0] for s in range(args.queries)]
    directory = Path(tempfile.mkdtemp(prefix="faiss-vs-segments-"))
    ours = SegmentedHashIndex.build(directory, [(np.arange(len(hashes)) + 1, media, times, hashes)])
    exact = [set(zip(h.query_positions.tolist(), h.media_ids.tolist(), h.timestamps.tolist()))
             for h in (ours.query(q, FIRST_PASS) for q in queries)]
    start = time.process_time()
    for q in queries:
        ours.query(q, FIRST_PASS)
    print(f"{args.rows:,} rows, faiss {faiss.__version__}, first stage at {FIRST_PASS} bits, CPU per query video\n")
    print("| index | build s (CPU) | ms per query (CPU) | share of the exact pairs |\n|---|---:|---:|---:|")
    print(f"| SegmentedHashIndex (3 bands, on disk) | - | {(time.process_time() - start) / len(queries) * 1e3:.1f} "
          "| 1.0000 |")
    ours.close()
    shutil.rmtree(directory)
    codes = hashes.view(np.uint8).reshape(-1, 8)
    candidates = [("IndexBinaryFlat", lambda: faiss.IndexBinaryFlat(64), args.flat_queries),
                  ("IndexBinaryMultiHash (3 tables of 21 bits, nflip 2)", lambda: faiss.IndexBinaryMultiHash(64, 3, 21),
                   args.queries),
                  ("IndexBinaryHash (24 bits, nflip 2)", lambda: faiss.IndexBinaryHash(64, 24), args.queries)]
    for name, make, count in candidates:
        index = make()
        if hasattr(index, "nflip"):
            index.nflip = 2
        start = time.process_time()
        index.add(codes)
        build = time.process_time() - start
        start = time.process_time()
        results = [index.range_search(q.view(np.uint8).reshape(-1, 8), FIRST_PASS + 1) for q in queries[:count]]
        per_query = (time.process_time() - start) / count
        shares = []
        for (limits, _, found), expected in zip(results, exact):
            position = np.repeat(np.arange(len(limits) - 1), np.diff(limits).astype(np.int64))
            got = set(zip(position.tolist(), media[found].tolist(), times[found].tolist()))
            shares.append(len(got & expected) / max(1, len(expected)))
        print(f"| {name} | {build:.1f} | {per_query * 1e3:,.1f} | {np.mean(shares):.4f} |", flush=True)
        del index


if __name__ == "__main__":
    main()
