"""Specificity against the store: a frame that resembles many stored videos is weak evidence for any one of them.

The alignment tests of `fingerprints.align` hold a match to fixed
thresholds (frames on a line, coverage, frames that pin down one moment).
Fixed thresholds lose precision as the store grows: low-detail footage (night
scenes, smooth gradients, talking heads in front of a wall, slides, cellular
or fractal patterns) looks alike across unrelated videos, and the more such
videos are stored, the likelier one of them lines up with a query by chance
(issue 12.4: false appearances per query rose with the store).

So a match is also weighed against the store, as a search engine weighs a
word by its inverse document frequency.  The lookup already returns, for
every query frame, each stored video it resembles and how closely; so at no
extra cost each (query frame, stored video) gets a rank: 1 + the number of
other stored videos that resemble the frame more closely (ties count half).
A frame counts fully for the `common_videos` videos it resembles most, and
`common_videos / rank` for the others: a frame as close to a thousand stored
videos as to this one adds almost nothing to this one, while a copy nearer
than the crowd of look-alikes keeps its full weight however large the crowd.
A match then needs `min_frames` of these weighted frames, and they must be
`min_store_share` of its matched frames.

Footage stored many times (viral footage: every re-upload kept) is its own
crowd: each copy is as close to the query as the others, and would take
their weight.  So `fingerprints.align` finds copies in rounds: the copies
found in one round are left out of the rank of the next
(`weights_beside_copies`).  Only copies that *hold* are left out, not every
video that lines up with the query: look-alikes line up by chance too, and
leaving those out of one another's crowd raised false appearances among
unrelated footage 2.5-fold.  Rounds still cascade through a family of
look-alikes once one member holds by chance (false appearances per 100
queries at 1,000 unrelated videos: 53.5 in one round, 104 in rounds), so
they come with the second weighing below (`Crowd`, on by default: 22).  On
the old re-upload suite, where each clip is stored about 18 times, recall
went from 0.53 to 0.98 (figures: docs/benchmarks.md).

That rank has two blind spots, both measured on the unrelated store
(`benchmarks/unrelated_store.py`).  It counts only the videos *as near as or
nearer than* the match: a chance resemblance at 10 bits with a crowd at 11
to 14 bits ranks first.  And it counts only among the videos the two-stage
lookup returns (those with a frame within `first_pass_distance` bits), so a
crowd further away is not seen at all.  So every match that passes the
tests is weighed a second time (`Crowd`), as Lowe's ratio test weighs a
descriptor match against the second-nearest: each of its frames against
every stored video within its distance / `crowd_ratio` bits (up to
`max_distance`, looked up in the whole store for those frames only) that
resembles at least `crowd_frames` of the match's frames so, less the videos
that line up with the query themselves.  A copy at 2 bits is weighed
against the videos within 8; a resemblance at 4 bits or more against
everything within 14.  Both exceptions were needed for the chair family
of the tests: copies of one another are no crowd for each other (without
that exception the family lost every pair even in the tests' eight-file
store), and, stored among 6,000 unrelated clips, a real clip has clutter at 12 to 14 bits (a synthetic clip that
resembles one chair frame or another), which is not a family of look-alikes
(counting it, the family found 19 of its 42 pairs with a ratio of 0.4; with
`crowd_frames` = 2 it keeps the 41 the matcher found before).  The price,
measured: among 10^4 unrelated clips the chair family finds 38 of those 41
pairs; and a copy whose edits put it as far from its original as a family
of look-alike footage is loses weight (a screen recording of cellular-automaton footage, from the
re-upload suite's seed 1, stored among 6,000 unrelated clips of which about
670 are cellular, no longer finds its two originals).
What this cannot catch is a chance line through a video nothing else in the
store resembles even from afar: that is `fingerprints.chance`'s.
Figures: docs/benchmarks.md, issue 12.4.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # align imports this module
    from .align import MatchParams, VideoMatch


class StoreResemblance:
    """How many stored videos resemble each query frame, and how closely: from the hits of one lookup."""

    def __init__(self, frames: int, positions: np.ndarray, media_ids: np.ndarray, distances: np.ndarray,
                 picture: np.ndarray, params: MatchParams) -> None:
        """`positions`, `media_ids`, `distances`: the query frame, stored video and distance of every hit;
        `picture` flags the hits in the picture space (the motion space says nothing about resemblance)."""
        self.params = params
        self.frames = frames
        self.positions, self.distances, self.picture = positions, distances.astype(np.int64), picture
        width = params.max_distance + 2
        self.closer = np.zeros((frames, width), dtype=np.float64)  # videos nearer than d, plus half of those at d
        self.nearest_rows = (np.zeros(0, dtype=np.int64),) * 3  # (query frame, video, its nearest distance)
        if not params.store_specificity or not picture.any():
            return
        self.nearest_rows = nearest_rows(positions[picture], media_ids[picture], self.distances[picture])
        self.closer = self._closer(np.ones(len(self.nearest_rows[0]), dtype=bool))

    def _closer(self, keep: np.ndarray) -> np.ndarray:
        """Per (query frame, distance d): how many of the stored videos flagged by `keep` (over `nearest_rows`)
        resemble the frame more closely than d bits, plus half of those at d."""
        pos, _, dist = self.nearest_rows
        nearest = np.zeros_like(self.closer)  # the videos by their nearest distance
        np.add.at(nearest, (pos[keep], np.minimum(dist[keep], nearest.shape[1] - 1)), 1.0)
        return np.cumsum(nearest, axis=1) - 0.5 * nearest

    def copies_closer(self, copies: set[int]) -> np.ndarray:
        """`closer` counted over the stored videos in `copies` only (for `weights_beside_copies`)."""
        return self._closer(np.isin(self.nearest_rows[1], np.fromiter(copies, dtype=np.int64, count=len(copies))))

    def weights(self, rows: np.ndarray, own: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Per query frame, how much a match with the stored video of hits `rows` counts on it (0 to 1).
        `own`: `self.own(rows)`, when the caller has it already."""
        out = np.zeros(self.frames, dtype=np.float64)
        if not self.params.store_specificity:
            out[self.positions[rows]] = 1.0
            return out
        hit, own = own or self.own(rows)
        if not len(hit):
            return out
        rank = 1.0 + self.closer[hit, own[hit]] - 0.5  # less this video, counted half among those at its distance
        out[hit] = np.minimum(1.0, self.params.common_videos / np.maximum(rank, 1.0))
        return out

    def weights_beside_copies(self, rows: np.ndarray, copies_closer: np.ndarray,
                              own: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Per query frame, how much a match with the stored video of hits `rows` counts on it beside the copies
        of the query's footage already found (`copies_closer`: `copies_closer(copies)`; the video itself is not
        among them): as `weights`, with those copies left out of the rank."""
        out = np.zeros(self.frames, dtype=np.float64)
        hit, own = own or self.own(rows)
        if not len(hit):
            return out
        at = own[hit]
        rank = 0.5 + self.closer[hit, at] - copies_closer[hit, at]  # this video counted half, as in `weights`
        out[hit] = np.minimum(1.0, self.params.common_videos / np.maximum(rank, 1.0))
        return out

    def own(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query frames hit in the picture space, per query frame the nearest distance) of hits `rows`."""
        rows = rows[self.picture[rows]]
        return nearest_by_frame(self.frames, self.positions[rows], self.distances[rows], self.params.max_distance)


class Crowd:
    """Every stored video near some query frames, up to the full `max_distance`, and how near: the crowd a
    match's frames are weighed against with `crowd_ratio`."""

    def __init__(self, frames: int, positions: np.ndarray, media_ids: np.ndarray, distances: np.ndarray) -> None:
        self.frames = frames
        self.positions, self.media_ids, self.distances = nearest_rows(positions, media_ids, distances)

    def weights(self, positions: np.ndarray, distances: np.ndarray, media_id: int, aligned: set[int],
                params: MatchParams, still: bool = False, known: Iterable[int] = ()) -> np.ndarray:
        """Per query frame, how much a match with `media_id` (its hits: `positions`, `distances`, picture space)
        counts on it: `common_videos` / its rank among the stored videos within its own distance / `crowd_ratio`
        (`crowd_radius`), leaving out the videos in `aligned` (those that line up with the query: copies of one
        another are no crowd for each other).  A `still` match (no specific frame) is weighed against every stored video
        within `still_crowd_floor` bits but those within `still_copy_margin` of its own distance on a frame (its
        copies): a still look-alike lines up with a still query too, so lining up excuses nothing there.  The videos
        in `known` (the copies of `media_id` the store knows of: matches found when they were stored) are no crowd
        either way: viral footage stored hundreds of times would otherwise be its own crowd."""
        out = np.zeros(self.frames, dtype=np.float64)
        if not len(positions):
            return out
        hit, own = nearest_by_frame(self.frames, positions, distances, params.max_distance)
        pos, media = self.positions, self.media_ids
        radius = crowd_radius(own, params, still)
        crowd = (self.distances <= radius[pos]) & (media != media_id)
        if still:
            crowd &= self.distances > own[pos] + params.still_copy_margin
        excused = set(known) if still else aligned | set(known)
        if excused:
            crowd &= ~np.isin(media, np.fromiter(excused, dtype=np.int64, count=len(excused)))
        # a look-alike resembles many of the match's frames; clutter resembling one frame here and there is no crowd
        crowd &= np.isin(pos, hit)
        others, frames_near = np.unique(media[crowd], return_counts=True)  # (query frame, video) rows are unique
        crowd &= np.isin(media, others[frames_near >= params.crowd_frames])
        rank = 1.0 + np.bincount(pos[crowd], minlength=self.frames)
        out[hit] = np.minimum(1.0, params.common_videos / rank[hit])
        return out


def nearest_rows(positions: np.ndarray, media_ids: np.ndarray,
                 distances: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query frame, stored video, its nearest distance) once per (query frame, stored video) of some hits."""
    dist = distances.astype(np.int64)
    order = np.lexsort((dist, media_ids, positions))
    pos, media, dist = positions[order], media_ids[order], dist[order]
    first = np.concatenate([[True], (pos[1:] != pos[:-1]) | (media[1:] != media[:-1])]) if len(pos) else pos
    return pos[first], media[first], dist[first]


def nearest_by_frame(frames: int, positions: np.ndarray, distances: np.ndarray,
                     max_distance: int) -> tuple[np.ndarray, np.ndarray]:
    """(the query frames some hits are on, per query frame their nearest distance: max_distance + 1 where none)."""
    own = np.full(frames, max_distance + 1, dtype=np.int64)
    np.minimum.at(own, positions, distances.astype(np.int64))
    return np.unique(positions), own


def crowd_radius(distances: np.ndarray, params: MatchParams, still: bool = False) -> np.ndarray:
    """How far (bits) the crowd of a frame matched at `distances` reaches: distance / `crowd_ratio`, at least
    `crowd_floor` (an exact match reaches 0 bits by the ratio), or `still_crowd_floor` for a `still` match, at most
    `max_distance`."""
    least = max(params.crowd_floor, params.still_crowd_floor if still else 0)
    reach = np.maximum(np.floor(distances.astype(np.int64) / params.crowd_ratio + 1e-9), least)
    return np.minimum(reach, params.max_distance).astype(np.int64)


def could_be_specific(weights: np.ndarray, params: MatchParams) -> bool:
    """Whether the query frames hitting one stored video weigh enough for a match at all.

    An upper bound of `store_evidence`: a stored video that fails it is not worth aligning, which keeps the
    cost of a store full of look-alikes down.
    """
    return not params.store_specificity or float(weights.sum()) >= params.min_frames


def store_evidence(match: VideoMatch, weights: np.ndarray, query_times: np.ndarray,
                   sampled: np.ndarray | None = None) -> float:
    """The weighted count of the match's matched query frames.  With `sampled` (the query frames that were
    weighed, when not all were): the mean weight of its pairs at those frames, times its pairs."""
    if not match.pairs:
        return 0.0
    at = np.clip(np.searchsorted(np.round(query_times, 3), [p.query_time for p in match.pairs]), 0, len(weights) - 1)
    if sampled is None:
        return float(weights[at].sum())
    chosen = np.isin(at, sampled)
    return float(weights[at[chosen]].mean() * len(at)) if chosen.any() else 0.0


def sample_frames(match: VideoMatch, query_times: np.ndarray, most: int) -> np.ndarray | None:
    """`most` of the match's matched query frames (positions), evenly spread; None when it has no more than
    `most` (or `most` is 0): then every frame it hits is weighed."""
    at = np.unique(np.searchsorted(np.round(query_times, 3), [p.query_time for p in match.pairs]))
    if most <= 0 or len(at) <= most:
        return None
    return at[np.unique(np.linspace(0, len(at) - 1, most).round().astype(np.int64))]


def is_store_specific(match: VideoMatch, weights: np.ndarray, query_times: np.ndarray,
                      params: MatchParams, sampled: np.ndarray | None = None) -> bool:
    """Whether the match holds against the store: enough matched frames on which it stands out (estimated from
    the `sampled` frames when only those were weighed)."""
    if not params.store_specificity:
        return True
    evidence = store_evidence(match, weights, query_times, sampled)
    return evidence >= params.min_frames and evidence >= params.min_store_share * len(match.pairs)
