"""Matches found by several routes (frame hashes, per-video signals) merged into one per stored video.

Each route finds copies the others miss (a rotated or off-centre crop defeats
the frame hashes, not local features), and a copy they all find must still be
one match: a report lists a stored video once.  The match that covers more of
the two videos is kept whole, so its segments, coverages and evidence stay
consistent with each other; it says every route that found the video
(`VideoMatch.routes`) and carries the geometry a local-feature route found
(`VideoMatch.transform`).

A transform maps query coordinates to stored ones as a similarity: ``scale``,
``rotation`` (degrees, counter-clockwise), ``tx`` and ``ty`` (the translation,
in one unit for both videos, which the route documents).
`invert_transform` turns it round for the match seen from the stored side;
other keys (counts such as ``inliers``) describe the evidence, not the
direction, and are kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from .align import VideoMatch

FRAMES_ROUTE = "frames"


def _coverage(m: VideoMatch) -> tuple[float, float]:
    return m.query_coverage + m.stored_coverage, m.score


def fuse_matches(frame_matches: Sequence[VideoMatch], *route_matches: Iterable[VideoMatch]) -> list[VideoMatch]:
    """One match per stored video from the frame-hash matches and each other route's (best score first)."""
    fused: dict[int, VideoMatch] = {m.media_id: m for m in frame_matches}
    for matches in route_matches:
        for m in matches:
            kept = fused.get(m.media_id)
            if kept is None:
                fused[m.media_id] = m
                continue
            best, other = (m, kept) if _coverage(m) > _coverage(kept) else (kept, m)
            best.routes = list(dict.fromkeys([*kept.routes, *m.routes]))
            best.transform = best.transform or other.transform
            fused[m.media_id] = best
    return sorted(fused.values(), key=lambda m: (-m.score, m.media_id))


def invert_transform(transform: dict[str, float]) -> dict[str, float]:
    """The same geometry seen from the other video (stored -> query); {} stays {}."""
    if not transform:
        return {}
    inverted = dict(transform)
    scale = transform.get("scale", 1.0) or 1.0
    angle = math.radians(transform.get("rotation", 0.0))
    tx, ty = transform.get("tx", 0.0), transform.get("ty", 0.0)
    cos, sin = math.cos(-angle), math.sin(-angle)
    if "scale" in transform:
        inverted["scale"] = round(1.0 / scale, 6)
    if "rotation" in transform:
        inverted["rotation"] = round(-transform["rotation"], 6)
    if "tx" in transform or "ty" in transform:
        # x_query = R(-angle) (x_stored - t) / scale
        inverted["tx"] = round(-(cos * tx - sin * ty) / scale, 6)
        inverted["ty"] = round(-(sin * tx + cos * ty) / scale, 6)
    return inverted
