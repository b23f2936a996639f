"""The daemon's periodic merge of the frame indexes' segment files.

Appends merge small segments themselves, but only up to `auto_merge_rows`
(a million rows), so that storing an item never waits for a big rewrite;
bigger size-tiered merges, and rewrites of segments with many removed media,
were left to `provenance index merge`.  A store that only grows through the
daemon therefore kept more and more mid-sized segments, and every query
visits each one.  This job runs the merges that are due, every
`[daemon] index_merge_seconds`.

The due merges follow Lucene's LogMergePolicy, which still leaves up to
`merge_factor - 1` segments of every size level: a store grown one video at a
time kept 15 at 10^6 rows, and a lookup probes each big segment about as much
as one segment holding everything (`benchmarks/segment_appends.py`: 4.2x the
time of one segment at 8 bits; 2.6x with 4 left; 1.5x with 2).  So when more
than `[daemon] index_max_segments` (1) are left, the job merges the newest
into one, as few as bring the count down to that, as far as the size cap
allows (`merge(max_segments=)`; merges leave the sizes falling with age, so
these are the smallest).  It rewrites at most `max_segment_rows` rows (at
10^6 rows merging everything took 0.23 s), once per period, and only after
something new was stored.

It is idempotent (nothing due: nothing written) and safe beside other
processes: a merge holds the index directory's writer lock and publishes by
an atomic rename of the manifest (`fingerprints.segments`), so readers and
appenders in other processes see the old segments or the merged one, never
a mix.
"""

from __future__ import annotations

import logging

from monitor.workspace import Workspace

log = logging.getLogger("provenance.index")


def merge_indexes(ws: Workspace, max_segments: int | None = None) -> dict[str, int]:
    """Run the due merges of every frame index, then merge the newest segments of those left with more
    than `max_segments` (default `[daemon] index_max_segments`); the segments merged away, by view."""
    if max_segments is None:
        max_segments = int(ws.config.section("daemon")["index_max_segments"])
    merged = {}
    for name, index in ws.indexes().items():
        # safe beside this process's appending and matching threads
        merged[name] = index.merge(max_segments=max_segments)
        if merged[name]:
            log.info("index merged view=%s segments_merged=%d segments=%d", name, merged[name],
                     len(index.segment_sizes()))
    return merged
