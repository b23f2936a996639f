"""How unlikely a match's line is by chance in the stored video it runs through: a significance test.

`fingerprints.specificity` weighs a frame by how many stored videos
resemble it, so a crowd of look-alikes makes no match.  It cannot judge a
line through a stored video that nothing else in the store resembles: a slow
gradient, a scrolling cellular pattern, a slide of another colour.  Such a
video resembles the query here and there at 9-14 bits, and among the many
lines tried (every speed, every offset) one gathers enough of those chance
resemblances to pass the fixed tests of `fingerprints.align` (issue 12.4).

So a match is also asked how surprising its line is, as BLAST asks of an
alignment.  For each matched query frame, the chance that a line drawn at
random through the stored video passes within `time_tolerance` of one of the
stored moments that resemble that frame at least as closely as the matched
one: the share of the stored video's time those moments cover.  A frame that
resembles every moment of the stored video (a static shot, a slow gradient)
is on every line; a frame that resembles one moment of it is on few.
Consecutive query frames that look alike are one piece of evidence, not
several (a still or slowly changing query would otherwise count each of its
frames): query frames are grouped into moments (a new moment when the
picture hash moves more than `moment_bits` from the moment's first frame),
and each moment counts once, with the likeliest of its frames.  The match's
surprise is -log10 of the product of those chances over its moments, in
decimal digits; a match needs `min_surprise` of them.

A real copy of a few seconds of changing footage gains one to two digits per
moment, and a long one dozens; what this costs is a short copy of footage
that barely changes (a few moments whose frames resemble much of the stored
video), which is also what chance produces.  Figures: docs/benchmarks.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # align imports this module
    from .align import MatchParams, VideoMatch
    from .model import VideoFingerprint


def _covered(times: np.ndarray, tolerance: float) -> float:
    """Length of the union of [t - tolerance, t + tolerance] over `times`."""
    if not len(times):
        return 0.0
    times = np.sort(times)
    gaps = np.diff(times)
    return float(2 * tolerance + np.minimum(gaps, 2 * tolerance).sum())


def frame_chances(match: VideoMatch, positions: np.ndarray, stored_times: np.ndarray, distances: np.ndarray,
                  query_times: np.ndarray, stored_duration: float, params: MatchParams) -> np.ndarray:
    """Per matched pair of `match`: the chance that a random line through the stored video passes near a stored
    moment that resembles the pair's query frame as closely, from the stored video's hits (`positions`: query
    frame of each hit)."""
    span = max(stored_duration, 0.0) + 2 * params.time_tolerance
    rounded = np.round(query_times, 3)
    out = np.ones(len(match.pairs))
    for k, pair in enumerate(match.pairs):
        j = int(np.searchsorted(rounded, pair.query_time))
        near = stored_times[(positions == j) & (distances <= pair.distance)]
        out[k] = min(1.0, _covered(near, params.time_tolerance) / span)
    return out


def moments(match: VideoMatch, query: VideoFingerprint, query_times: np.ndarray, bits: int) -> np.ndarray:
    """The moment of each matched pair: consecutive query frames within `bits` of the moment's first share one."""
    from .phash import hamming

    rounded = np.round(query_times, 3)
    out = np.zeros(len(match.pairs), dtype=np.int64)
    first, moment = None, -1
    for k, pair in enumerate(match.pairs):
        frame = query.frames[int(np.searchsorted(rounded, pair.query_time))]
        value = (frame.mirrored.get("picture", frame.hash) if match.mirrored else frame.hash)
        if first is None or hamming(value, first) > bits:
            first, moment = value, moment + 1
        out[k] = moment
    return out


def surprise(match: VideoMatch, query: VideoFingerprint, positions: np.ndarray, stored_times: np.ndarray,
             distances: np.ndarray, query_times: np.ndarray, stored_duration: float, params: MatchParams) -> float:
    """-log10 of the chance of the match's line, in decimal digits: one factor per query moment."""
    if not match.pairs:
        return 0.0
    chances = frame_chances(match, positions, stored_times, distances, query_times, stored_duration, params)
    moment = moments(match, query, query_times, params.moment_bits)
    likeliest = np.zeros(int(moment.max()) + 1)
    np.maximum.at(likeliest, moment, chances)
    return float(-np.log10(np.maximum(likeliest, 1e-12)).sum())


def is_surprising(match: VideoMatch, query: VideoFingerprint, positions: np.ndarray, stored_times: np.ndarray,
                  distances: np.ndarray, query_times: np.ndarray, stored_duration: float,
                  params: MatchParams) -> bool:
    """Whether the match's line is unlikely enough by chance (`min_surprise`; 0 turns the test off).

    Two matches are not asked: a near-identical one (`static_max_distance`: timing cannot tell a still from
    another take of it, distance can, and `fingerprints.align` keeps only the nearest of those), and one whose
    moving parts in front of a still camera match (`motion_frames`): there what moves pins the moment down,
    which the picture cannot.
    """
    if (params.min_surprise <= 0 or match.mean_distance <= params.static_max_distance
            or match.motion_frames >= params.min_frames):
        return True
    return surprise(match, query, positions, stored_times, distances, query_times, stored_duration,
                    params) >= params.min_surprise
