"""Which parts of two frames matched: the edit a match shows, from its frame pairs.

Alignment knows which frames matched and how far apart their hashes are, but
the index only returns stored times, not which of a stored frame's hashes
(whole picture or centre) was hit.  With both videos' frame hashes at hand
(the query's fingerprint, the stored frames from the repository), each
matched pair is re-examined: whichever combination of regions is nearest
says what the re-upload did.

- whole/whole: the same framing;
- query whole / stored centre: the query is a crop (the stored video shows more);
- query centre / stored whole: the stored video is a crop of the query;
- centre/centre: both are framed differently at the edges (banners, badges);
- query window: the stored footage is shown in a window (picture-in-picture, a player, a split screen);
- query surround: the stored footage is around the query's window (the other side of a split, under a sticker);
- stored window, stored surround: the same the other way round (the stored post is the composite);
- moving parts: a still camera, told apart by what moves in front of it (the picture matched no better).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from .model import FrameHash

WHOLE = "whole"
QUERY_CROPPED = "cropped"
STORED_CROPPED = "crop of query"
CENTRE = "centre"
WINDOW = "window"
SURROUND = "surround"
STORED_WINDOW = "in a window of the stored video"  # the names `monitor.jobs.matching` turns WINDOW, SURROUND into
STORED_SURROUND = "under an overlay in the stored video"
MOVING = "moving parts"
PLAINER_MARGIN = 2  # bits by which a less plain explanation must match better to be given


class StoredFrame(Protocol):
    timestamp: float
    hashes: dict[str, int]  # stored view name -> hash


def _nearest(times: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(times - t)))


def pair_regions(query_frames: Sequence[FrameHash], stored_frames: Sequence[StoredFrame],
                 pairs: Sequence, mirrored: bool) -> dict[str, int]:
    """Count the matched pairs by the regions that match best (names above)."""
    if not query_frames or not stored_frames or not pairs:
        return {}
    q_times = np.array([f.timestamp for f in query_frames])
    s_times = np.array([f.timestamp for f in stored_frames])
    counts: dict[str, int] = {}
    for pair in pairs:
        q = query_frames[_nearest(q_times, pair.query_time)]
        s = stored_frames[_nearest(s_times, pair.stored_time)]
        qh = q.mirrored if mirrored else q.hashes
        sh = s.hashes
        whole, centre, window, surround = (qh.get(v) for v in ("picture", "centre", "window", "surround"))
        stored_whole, stored_centre = sh.get("picture"), sh.get("centre")
        stored_window, stored_surround = sh.get("window"), sh.get("surround")
        options = [(_distance(whole, stored_whole), 0, WHOLE), (_distance(whole, stored_centre), 1, QUERY_CROPPED),
                   (_distance(centre, stored_whole), 1, STORED_CROPPED), (_distance(centre, stored_centre), 2, CENTRE),
                   (min(_distance(window, stored_whole), _distance(window, stored_centre)), 3, WINDOW),
                   (min(_distance(surround, stored_whole), _distance(surround, stored_centre)), 3, SURROUND),
                   (min(_distance(whole, stored_window), _distance(centre, stored_window)), 3, STORED_WINDOW),
                   (min(_distance(whole, stored_surround), _distance(centre, stored_surround)), 3, STORED_SURROUND),
                   (_distance(qh.get("motion"), sh.get("motion")), 4, MOVING)]
        nearest = min(d for d, _, _ in options)
        # near-ties go to the plainer explanation: a bit or two is noise between two hashes of one frame
        _, _, best = min((rank, d, name) for d, rank, name in options if d <= nearest + PLAINER_MARGIN)
        counts[best] = counts.get(best, 0) + 1
    return counts


def picture_share(crops: Sequence[tuple[float, float, float]], t: float) -> tuple[float, float]:
    """(width, height) share of the frame that the active picture fills at time `t`.

    `crops` are (from time, width share, height share), in time order: the
    framing estimate of each shot (black bars and blurred pads cut off).
    """
    share = (1.0, 1.0)
    for start, width, height in crops:
        if start > t + 1e-6:
            break
        share = (width, height)
    return share


def framing(query_crops: Sequence[tuple[float, float, float]], stored_crops: Sequence[tuple[float, float, float]],
            pairs: Sequence) -> dict[str, float]:
    """How much of each frame the picture fills where the match begins: bars or a blurred pad around it show
    as a share below 1 (the hashes never see them, so this is the only trace of padding in a match)."""
    if not pairs:
        return {}
    first = pairs[0]
    qw, qh = picture_share(query_crops, first.query_time)
    sw, sh = picture_share(stored_crops, first.stored_time)
    return {"query_width": round(qw, 3), "query_height": round(qh, 3),
            "stored_width": round(sw, 3), "stored_height": round(sh, 3)}


def _distance(a: int | None, b: int | None) -> int:
    return 65 if a is None or b is None else (a ^ b).bit_count()
