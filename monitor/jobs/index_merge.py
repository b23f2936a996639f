"""The daemon's periodic merge of the frame indexes' segment files.

Appends merge small segments themselves, but only up to `auto_merge_rows`
(a million rows), so that storing an item never waits for a big rewrite;
bigger size-tiered merges, and rewrites of segments with many removed media,
were left to `provenance index merge`.  A store that only grows through the
daemon therefore kept more and more mid-sized segments, and every query
visits each one.  This job runs the merges that are due, every
`[daemon] index_merge_seconds`.

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


def merge_indexes(ws: Workspace) -> dict[str, int]:
    """Run the due merges of every frame index; the segments merged away, by view."""
    merged = {}
    for name, index in ws.indexes().items():
        merged[name] = index.merge()  # safe beside this process's appending and matching threads
        if merged[name]:
            log.info("index merged view=%s segments_merged=%d segments=%d", name, merged[name],
                     len(index.segment_sizes()))
    return merged
