"""The edits each appearance shows beyond its frame hashes, from a few matched frames cut in colour.

The analysis decodes grey pictures, pads cut off and still overlays masked:
that is what makes matching robust, and why a grey, sepia, captioned or
logo-stamped copy, the colour of its pads or which part a crop kept never
showed in the explanations.  Here a few matched pairs of each appearance are
cut from the two media files, small and in colour (`monitor.reports.frames`,
all frames of a report from one or two ffmpeg processes), and compared by
`fingerprints.edits`.

The pairs are taken from one stretch of the match a few seconds long, so
each file needs one seek, and far enough apart in time that moving footage
changes between them (what stays still on one side only is an overlay).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fingerprints.align import FramePair, VideoMatch
from fingerprints.edits import PictureEdits, picture_edits
from monitor.workspace import Workspace

if TYPE_CHECKING:  # find-earliest calls this module
    from monitor.jobs.earliest import Appearance

PAIRS = 4  # matched pairs compared per appearance
STRETCH_SECONDS = 3.5  # ... taken within this much of the query (frames closer than 4 s share a seek)
BOX = 128  # frames are cut to fit this many pixels square
MAX_MEDIA = 8  # media explained per report: the earliest appearances' (each further one costs two seeks)


def chosen_pairs(m: VideoMatch, count: int = PAIRS, stretch: float = STRETCH_SECONDS) -> list[FramePair]:
    """`count` pairs spread over the stretch of at most `stretch` seconds that holds the most matched pairs."""
    pairs = sorted(m.pairs, key=lambda p: p.query_time)
    if len(pairs) <= count:
        return pairs
    times = np.array([p.query_time for p in pairs])
    ends = np.searchsorted(times, times + stretch, side="right")
    start = int(np.argmax(ends - np.arange(len(times))))
    inside = pairs[start:ends[start]]
    if len(inside) <= count:
        return inside
    return [inside[int(round(k))] for k in np.linspace(0, len(inside) - 1, count)]


def _decode(jpeg: bytes | None) -> np.ndarray | None:
    if not jpeg:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def explain_appearances(ws: Workspace, query_file: Path, appearances: list[Appearance]) -> None:
    """Set `Appearance.edits` for the matched appearances of the first MAX_MEDIA media (posts of one media
    share the result); a file that cannot be read leaves its appearances without."""
    from monitor.reports.frames import Frame, cut_frames  # the reports package imports the jobs

    plans: dict[int, tuple[VideoMatch, list[tuple[Frame, Frame]]]] = {}
    for a in appearances:
        if a.match is None or a.media.id in plans or len(plans) >= MAX_MEDIA or not a.media.store_path:
            continue
        try:
            stored = ws.store.path(a.media.store_path)
        except ValueError:
            continue
        plans[a.media.id] = (a.match, [(Frame.of(query_file, p.query_time), Frame.of(stored, p.stored_time))
                                       for p in chosen_pairs(a.match)])
    if not plans:
        return
    cut = cut_frames([f for _, frames in plans.values() for pair in frames for f in pair], box=BOX)
    found: dict[int, PictureEdits] = {}
    for media_id, (m, frames) in plans.items():
        query = [_decode(cut.get(q)) for q, _ in frames]
        stored = [_decode(cut.get(s)) for _, s in frames]
        shares = m.framing or {}
        found[media_id] = picture_edits(query, stored, m.mirrored,
                                        (shares.get("query_width", 1.0), shares.get("query_height", 1.0)),
                                        (shares.get("stored_width", 1.0), shares.get("stored_height", 1.0)))
    for a in appearances:
        if a.media.id in found:
            a.edits = found[a.media.id]
