"""The edits each appearance shows beyond its frame hashes, from a few matched frames cut in colour.

The analysis decodes grey pictures, pads cut off and still overlays masked:
that is what makes matching robust, and why a grey, sepia, captioned or
logo-stamped copy, the colour of its pads or which part a crop kept never
showed in the explanations.  Here a few matched pairs of each appearance are
cut from the two media files, small and in colour (`monitor.reports.frames`,
all frames of a report from one or two ffmpeg processes), and compared by
`fingerprints.edits`.

The pairs are taken from one stretch of the query a couple of seconds long,
the same for every match that has pairs there (so the query's frames are
cut once), so each file needs one seek, and far enough apart in time that
moving footage changes between them (what stays still on one side only is
an overlay).  Listing keyframes first, as the HTML report does, cost more
than it saved here (`benchmarks/explain_speed.py`).
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
STRETCH_SECONDS = 2.5  # ... taken within this much of the query, the same stretch for every match that has it
BOX = 128  # frames are cut to fit this many pixels square
MAX_MEDIA = 3  # media explained per report, the earliest appearances' (each costs a seek and a decode)


def chosen_pairs(m: VideoMatch, at: float | None = None, count: int = PAIRS,
                 stretch: float = STRETCH_SECONDS) -> list[FramePair]:
    """`count` pairs spread over a stretch of at most `stretch` seconds of the query: the one starting at
    query time `at` when it holds `count` pairs, else the first holding the most."""
    pairs = sorted(m.pairs, key=lambda p: p.query_time)
    if not pairs:
        return []
    times = np.array([p.query_time for p in pairs])
    ends = np.searchsorted(times, times + stretch, side="right")
    held = np.minimum(ends - np.arange(len(times)), count)
    start = int(np.argmax(held))
    if at is not None:
        first = int(np.searchsorted(times, at))
        if first < len(times) and held[first] >= count:
            start = first
    inside = pairs[start:ends[start]]
    if len(inside) <= count:
        return inside
    # the pairs nearest evenly spread query times: matches sharing the stretch share their query frames
    at_times = np.array([p.query_time for p in inside])
    targets = times[start] + np.linspace(0.0, min(stretch, float(at_times[-1] - at_times[0])), count)
    return [inside[k] for k in sorted({int(np.argmin(np.abs(at_times - t))) for t in targets})]


def shared_start(matches: list[VideoMatch], count: int = PAIRS, stretch: float = STRETCH_SECONDS) -> float | None:
    """The query time at which the most matches have a pair and, within `stretch` after it, `count` pairs:
    their query frames are then the same frames, cut once."""
    if not any(m.pairs for m in matches):
        return None
    candidates = np.unique(np.concatenate([[p.query_time for p in m.pairs] for m in matches if m.pairs]))
    held = np.zeros(len(candidates), dtype=np.int64)
    for m in matches:
        times = np.sort(np.array([p.query_time for p in m.pairs]))
        inside = (np.searchsorted(times, candidates + stretch, side="right")
                  - np.searchsorted(times, candidates, side="left"))
        held += np.isin(candidates, times) & (inside >= count)
    return float(candidates[int(np.argmax(held))]) if held.any() else None


def _decode(jpeg: bytes | None) -> np.ndarray | None:
    if not jpeg:
        return None
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def explain_appearances(ws: Workspace, query_file: Path, appearances: list[Appearance]) -> None:
    """Set `Appearance.edits` for the matched appearances of the first MAX_MEDIA media (posts of one media
    share the result); a file that cannot be read leaves its appearances without."""
    from monitor.reports.frames import Frame, cut_frames  # the reports package imports the jobs

    files: dict[int, tuple[VideoMatch, Path]] = {}
    for a in appearances:
        if a.match is None or not a.match.pairs or a.media.id in files or len(files) >= MAX_MEDIA:
            continue
        try:
            files[a.media.id] = (a.match, ws.store.path(a.media.store_path))
        except ValueError:
            continue
    if not files:
        return
    at = shared_start([m for m, _ in files.values()])
    plans = {media_id: (m, [(Frame.of(query_file, p.query_time), Frame.of(stored, p.stored_time))
                            for p in chosen_pairs(m, at)]) for media_id, (m, stored) in files.items()}
    cut = cut_frames([f for _, frames in plans.values() for pair in frames for f in pair], box=BOX, fast=True)
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
