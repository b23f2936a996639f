"""Matches found by several routes (frame hashes, per-video signals) merged into one per stored video.

Each route finds copies the others miss (a rotated or off-centre crop defeats
the frame hashes, not local features), and a copy they all find must still be
one match: a report lists a stored video once.  A match with frame pairs (the
evidence a report shows, cuts frames from and explains) is preferred, then the
one that covers more of the two videos; it is kept whole, so its segments, coverages and evidence stay
consistent with each other; it says every route that found the video
(`VideoMatch.routes`) and carries the geometry a local-feature route found
(`VideoMatch.transform`).

A transform (the keypoint route's `fingerprints.keypoints.match.geometry`)
maps the query's picture onto the stored one: ``rotation`` (degrees, in image
coordinates: positive turns clockwise on screen), ``scale_x`` and ``scale_y``,
and which part of each picture the other shows (``stored_x/y/w/h``: where
the query lies in the stored picture, ``query_x/y/w/h`` the other way, as
fractions of that picture).  `invert_transform` turns it round for the match
seen from the stored side; other keys (``inliers``) describe the evidence,
not the direction, and are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .align import VideoMatch

FRAMES_ROUTE = "frames"


def _coverage(m: VideoMatch) -> tuple[bool, float, float]:
    """Frame pairs first (they are the evidence a report shows and explains), then coverage."""
    return bool(m.pairs), m.query_coverage + m.stored_coverage, m.score


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
    """The same geometry seen from the other video (stored -> query); {} stays {}.

    Exact for a rotation with one scale (what re-uploads do); a stretch under
    a rotation is approximated (its inverse has a small shear this leaves out).
    """
    inverted = {}
    for key, value in transform.items():
        if key == "rotation":
            inverted[key] = -value
        elif key in ("scale", "scale_x", "scale_y"):
            inverted[key] = round(1.0 / value, 3) if value else value
        elif key.startswith("query_"):
            inverted["stored_" + key[6:]] = value
        elif key.startswith("stored_"):
            inverted["query_" + key[7:]] = value
        else:
            inverted[key] = value
    return inverted
