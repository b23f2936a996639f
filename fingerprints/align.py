"""Temporal alignment: turn frame-hash hits into video matches with segments.

Single frames of unrelated footage can look alike; a run of frames that line
up in time cannot, by chance.  For every candidate stored video we vote for a
line ``stored_time = speed * query_time + offset`` over a grid of speeds
(re-uploads are sped up or slowed down), refit the best voted lines to the
matched frames (the grid and its 0.1 s bins cannot tell 1.1x from real time
over a few seconds; the frames can), keep the frames on the winning line,
and cut them into segments where the line is interrupted.  A match reports
both coverages: how much of the query is in the stored video ("clip of") and
how much of the stored video is in the query ("contains").

A line is only evidence when its frames match *that* moment: an account
template shared by unrelated posts, or a static camera, makes every frame
resemble every other, and such matches are kept only when near-identical
(see `_specific_or_nearest`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from .index import FrameIndex, IndexHits
from .model import VideoFingerprint
from .signals import PICTURE_SPACE, frame_views, spaces, stored_views
from .chance import is_surprising, moments
from .specificity import (Crowd, StoreResemblance, could_be_specific, crowd_radius, is_store_specific,
                          nearest_by_frame, sample_frames)

_BIN = 0.1  # seconds, resolution of the offset vote
_CANDIDATE_LINES = 4  # voted lines at clearly different speeds that are refitted, besides real time
_DISTINCT_SPEEDS = 0.04  # relative difference between the speeds of two candidate lines
_FIT_ROUNDS = 6  # refits of a line as its pairs change
_INDEPENDENT_SECONDS = 0.5  # query seconds per independent timing error, for the error of a fitted speed
_FIT_SPAN = 1.0  # seconds of query a line's pairs must span for its speed to be fitted
_REAL_TIME_SLOPE = 0.03  # fitted speeds this close to 1 are real time (timing noise) ...
_REAL_TIME_ERRORS = 3.5  # ... and so are those within this many standard errors of it


@dataclass(frozen=True)
class MatchParams:
    max_distance: int = 14  # frame hashes further apart than this (bits) are not hits
    time_tolerance: float = 0.4  # seconds off the line that still count as on it
    max_gap: float = 3.0  # seconds without matched frames that split a segment
    min_frames: int = 5  # matched frames needed for a match
    min_duration: float = 2.0  # seconds of matched footage needed for a match, in each of the two videos
    min_density: float = 0.3  # matched share of the query frames inside the segments
    min_coverage: float = 0.2  # of the query or of the stored video
    min_speed: float = 0.5
    max_speed: float = 2.0
    speed_step: float = 1.02  # ratio between neighbouring speeds tried
    off_line_gap: float = 1.5  # seconds off the line beyond which a hit is another moment
    specific_margin: int = 3  # bits by which a frame's match must beat its best match at another moment
    min_specific_share: float = 0.4  # of the matched frames, that must be specific (suite: true >= 0.45)
    edge_margin: float = 1.0  # a match whose pairs average within this of max_distance is noise
    static_max_distance: float = 2.0  # a match with few specific frames needs this mean distance or less ...
    static_margin: float = 0.5  # ... and must be this close to the nearest such candidate
    first_pass_distance: int = 8  # videos with a frame this near are aligned at max_distance; 0 looks up all at once
    store_specificity: bool = True  # weigh frames by how many stored videos resemble them (`fingerprints.specificity`)
    common_videos: int = 2  # a frame counts fully for the videos it resembles most, this many; k / rank for others
    min_store_share: float = 0.5  # of the matched frames, the weighted count needed (and at least min_frames)
    crowd_ratio: float = 0.25  # a match's frames are weighed again against every stored video within its distance
    # / crowd_ratio (up to max_distance), less those that line up with the query (`fingerprints.specificity.Crowd`);
    # 0 turns it off (false appearances per 100 queries on 1,000 unrelated videos: 22 on, 104 off; docs/benchmarks.md)
    crowd_frames: int = 2  # ... and that resemble at least this many of its frames so (look-alikes, not clutter)
    crowd_floor: int = 3  # ... and within at least this many bits, however near (an exact match reaches 0 bits)
    still_crowd_floor: int = 8  # ... this many for a match with no specific frame (one still picture's evidence),
    still_copy_margin: int = 1  # ... less the stored videos within this many bits of its own distance (its copies)
    known_copies: int = 1  # ... less the stored videos its stored matches name, this many matches away (0: none)
    crowd_sample: int = 48  # ... on at most this many of its matched frames, evenly spread (0: all)
    crowd_exact_bits: int = 11  # ... its crowd found for certain within this many bits; beyond, the index may skip
    # some (`FrameIndex.query`'s complete_to): 5 times fewer probes at 14 bits (max_distance: all; docs/benchmarks.md)
    min_surprise: float = 0.0  # decimal digits by which a match's line must be unlikely (`fingerprints.chance`);
    # off (0) by default: 4 takes false appearances on 1,000 unrelated videos from 22 to 19.5 per 100 queries, but
    # loses short copies of footage that barely changes (the old re-upload suite: recall 0.98 -> 0.88)
    moment_bits: int = 8  # consecutive query frames within this of a moment's first count once for `min_surprise`
    still_moments: int = 1  # a match whose query frames show no more moments than this (`fingerprints.chance.moments`)
    # must also hold as a still, against every stored video within `still_crowd_floor` (0: off; on 10^4 unrelated
    # videos 1 took false appearances from 0.75 to 0.5 per 100 queries, both re-upload suites unchanged)


@dataclass(frozen=True)
class Segment:
    query_start: float
    query_end: float
    stored_start: float
    stored_end: float


@dataclass(frozen=True)
class FramePair:
    query_time: float
    stored_time: float
    distance: int


@dataclass
class VideoMatch:
    media_id: int
    query_coverage: float
    stored_coverage: float
    segments: list[Segment]
    mirrored: bool
    speed: float  # stored seconds per query second
    offset: float  # stored_time = speed * query_time + offset
    score: float
    matched_frames: int
    mean_distance: float
    pairs: list[FramePair] = field(default_factory=list)  # best pair per matched query frame
    specific_frames: int = 0  # matched frames that match this moment clearly better than any other
    motion_frames: int = 0  # matched frames whose moving parts (in front of a still camera) match too
    flat_frames: int = 0  # flat query frames the segment edges were carried over (`extend_over_flat`)
    framing: dict[str, float] = field(default_factory=dict)  # picture's share of each frame (`fingerprints.explain`)
    regions: dict[str, int] = field(default_factory=dict)  # pairs by matching regions (`fingerprints.explain`)
    transform: dict[str, float] = field(default_factory=dict)  # geometry found by local features (query -> stored)
    routes: list[str] = field(default_factory=lambda: ["frames"])  # the signal kinds that found this match


def speed_grid(params: MatchParams) -> np.ndarray:
    up = np.log(params.max_speed) / np.log(params.speed_step)
    down = np.log(params.min_speed) / np.log(params.speed_step)
    exponents = np.arange(np.ceil(down), np.floor(up) + 1)
    return params.speed_step ** exponents  # includes exactly 1.0 (exponent 0)


def _vote(qt: np.ndarray, st: np.ndarray, weights: np.ndarray, speeds: np.ndarray,
          tol: float) -> list[tuple[float, float, float]]:
    """(score, speed, offset) of the best offset at each speed, by a windowed histogram of offsets."""
    lines = []
    half = max(1, int(round(tol / _BIN)))
    kernel = np.ones(2 * half + 1)
    for speed in speeds:
        offsets = st - speed * qt
        lo = offsets.min() - tol
        bins = np.floor((offsets - lo) / _BIN).astype(np.int64)
        window = np.convolve(np.bincount(bins, weights=weights), kernel, mode="same")
        i = int(window.argmax())
        lines.append((float(window[i]), float(speed), float(lo + (i + 0.5) * _BIN)))
    return lines


def _candidate_lines(lines: list[tuple[float, float, float]]) -> list[tuple[float, float]]:
    """(speed, offset) of the best voted lines at clearly different speeds, and of real time."""
    chosen: list[tuple[float, float]] = [(s, o) for _, s, o in lines if s == 1.0]
    for _, speed, offset in sorted(lines, reverse=True):
        if len(chosen) > _CANDIDATE_LINES:
            break
        if all(abs(speed / s - 1) > _DISTINCT_SPEEDS for s, _ in chosen):
            chosen.append((speed, offset))
    return chosen


def _on_line(qt: np.ndarray, st: np.ndarray, weights: np.ndarray, positions: np.ndarray, speed: float,
             offset: float, tol: float) -> np.ndarray:
    """Indices of one pair per query frame with pairs within `tol` of the line: the nearest hash, then the
    nearest the line (the nearest the line alone would hold the line where it is)."""
    residual = np.abs(st - (speed * qt + offset))
    near = np.flatnonzero(residual <= tol)
    near = near[np.lexsort((residual[near], -weights[near], positions[near]))]
    return near[np.concatenate([[True], positions[near][1:] != positions[near][:-1]])] if len(near) else near


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, float, float] | None:
    """(slope, intercept, unscaled variance of the slope) of the least-squares line through (x, y) with weights
    `w` on the squared residuals: `np.polyfit(x, y, 1, w=sqrt(w), cov="unscaled")` in closed form, ten times
    faster (it is called for every line of every candidate); None when the weights or x do not spread."""
    total = float(w.sum())
    if total <= 0:
        return None
    xm, ym = float(w @ x) / total, float(w @ y) / total
    dx = x - xm
    sxx = float(w @ (dx * dx))
    if sxx <= 0:
        return None
    slope = float(w @ (dx * (y - ym))) / sxx
    return slope, ym - slope * xm, 1.0 / sxx


def _fit_line(qt: np.ndarray, st: np.ndarray, weights: np.ndarray, positions: np.ndarray, speed: float,
              offset: float, params: MatchParams) -> tuple[float, float, float, float]:
    """(score, speed, offset, standard error of the speed) of the line refitted from (speed, offset).

    Weighted least squares over one pair per query frame near the line, repeated as the line moves: the
    vote's grid of speeds and 0.1 s bins cannot tell 1.1x from real time over a few seconds, the pairs can.
    The score is the summed weight of the query frames on the final line.
    """
    lo, hi = params.min_speed / params.speed_step, params.max_speed * params.speed_step
    error = np.inf
    for _ in range(_FIT_ROUNDS):
        on = _on_line(qt, st, weights, positions, speed, offset, params.time_tolerance)
        q, s, w = qt[on], st[on], weights[on]
        if len(on) < 3 or np.ptp(q) < _FIT_SPAN:
            if len(on):
                offset = float(np.median(s - speed * q))
            break
        fitted = _weighted_line(q, s, w)
        if fitted is None:
            break
        slope, intercept, slope_variance = fitted
        residual = s - (slope * q + intercept)
        # neighbouring frames are matched to neighbouring stored frames with the same timing error: count one
        # independent timing per `_INDEPENDENT_SECONDS` of query
        independent = min(len(on), max(3.0, float(np.ptp(q)) / _INDEPENDENT_SECONDS))
        error = float(np.sqrt(slope_variance * float(np.sum(w * residual ** 2)) / max(1, len(on) - 2)
                              * len(on) / independent))
        if not lo <= slope <= hi:
            break
        moved = abs(slope - speed) > 1e-4 or abs(intercept - offset) > 1e-3
        speed, offset = float(slope), float(intercept)
        if not moved:
            break
    on = _on_line(qt, st, weights, positions, speed, offset, params.time_tolerance)
    return float(weights[on].sum()), speed, offset, error


def _line(qt: np.ndarray, st: np.ndarray, weights: np.ndarray, positions: np.ndarray,
          params: MatchParams) -> tuple[float, float]:
    """The (speed, offset) of the line most pairs lie on: voted over a grid of speeds, then refitted.

    A fitted speed within noise of 1 (`_REAL_TIME_SLOPE`, or a few standard errors) is real time: a copy
    that was not retimed must not read as 1.01.
    """
    candidates = _candidate_lines(_vote(qt, st, weights, speed_grid(params), params.time_tolerance))
    fits = [_fit_line(qt, st, weights, positions, speed, offset, params) for speed, offset in candidates]
    _, speed, offset, error = max(fits, key=lambda f: f[0])
    if abs(speed - 1.0) <= max(_REAL_TIME_SLOPE, _REAL_TIME_ERRORS * error):
        on = _on_line(qt, st, weights, positions, speed, offset, params.time_tolerance)
        return 1.0, float(np.median(st[on] - qt[on])) if len(on) else offset
    return speed, offset


def align_candidate(
    media_id: int,
    query_times: np.ndarray,
    query_positions: np.ndarray,
    stored_times: np.ndarray,
    distances: np.ndarray,
    query_duration: float,
    stored_duration: float,
    sample_step: float,
    mirrored: bool,
    params: MatchParams,
    motion: np.ndarray | None = None,
) -> VideoMatch | None:
    """Align the hits of one stored video; None when they do not make a match.

    `motion` flags the hits of moving-part hashes (the motion space of `fingerprints.signals`); their
    distances are only ever compared with each other.
    """
    if len(query_positions) < params.min_frames:
        return None
    qt = query_times[query_positions]
    per_frame = np.bincount(query_positions)[query_positions]
    weights = (1.0 - distances / (params.max_distance + 1.0)) / per_frame
    speed, offset = _line(qt, stored_times, weights, query_positions, params)

    residual = np.abs(stored_times - (speed * qt + offset))
    on_line = residual <= params.time_tolerance
    if on_line.sum() < params.min_frames:
        return None
    # best pair per query frame: closest to the line, then smallest distance
    order = np.lexsort((distances[on_line], residual[on_line], query_positions[on_line]))
    pos, q, s, d = (a[on_line][order] for a in (query_positions, qt, stored_times, distances))
    first = np.concatenate([[True], pos[1:] != pos[:-1]])
    pos, q, s, d = pos[first], q[first], s[first], d[first]

    segments: list[Segment] = []
    seg_frames: list[int] = []
    start = 0
    for i in range(1, len(q) + 1):
        if i == len(q) or q[i] - q[i - 1] > params.max_gap:
            q_end = min(q[i - 1] + sample_step, query_duration) if query_duration else q[i - 1] + sample_step
            s_end = min(s[i - 1] + speed * sample_step, stored_duration) if stored_duration else s[i - 1]
            segments.append(Segment(round(float(q[start]), 3), round(float(q_end), 3),
                                    round(float(s[start]), 3), round(float(s_end), 3)))
            seg_frames.append(i - start)
            start = i
    keep = [k for k, n in enumerate(seg_frames) if n >= 2] or [int(np.argmax(seg_frames))]
    segments = [segments[k] for k in keep]
    matched = int(sum(seg_frames[k] for k in keep))

    q_len = sum(seg.query_end - seg.query_start for seg in segments)
    s_len = sum(max(0.0, seg.stored_end - seg.stored_start) for seg in segments)
    inside = sum(int(((query_times >= seg.query_start) & (query_times < seg.query_end)).sum())
                 for seg in segments)
    density = matched / max(1, inside)
    q_cov = min(1.0, q_len / query_duration) if query_duration else 0.0
    s_cov = min(1.0, s_len / stored_duration) if stored_duration else 0.0
    # both sides: a slow line through a few stored frames fits chance hits (seen at speed 0.5, 1 s stored)
    if (matched < params.min_frames or min(q_len, s_len) < params.min_duration or density < params.min_density
            or max(q_cov, s_cov) < params.min_coverage):
        return None
    in_segments = np.zeros(len(q), dtype=bool)
    for seg in segments:
        in_segments |= (q >= seg.query_start) & (q <= seg.query_end)
    mean_d = float(d[in_segments].mean()) if in_segments.any() else float(d.mean())
    specific = _specific_frames(query_positions, distances, residual, pos[in_segments], d[in_segments], speed,
                                params, motion)
    motion_frames = 0
    if motion is not None and motion.any():
        on_motion = motion & (residual <= params.time_tolerance)
        motion_frames = int(np.isin(pos[in_segments], query_positions[on_motion]).sum())
    if mean_d > params.max_distance - params.edge_margin:
        return None
    score = matched * (1.0 - mean_d / 64.0)
    pairs = [FramePair(round(float(a), 3), round(float(b), 3), int(c))
             for a, b, c in zip(q[in_segments], s[in_segments], d[in_segments])]
    return VideoMatch(media_id=media_id, query_coverage=round(q_cov, 4), stored_coverage=round(s_cov, 4),
                      segments=segments, mirrored=mirrored, speed=round(speed, 4), offset=round(offset, 3),
                      score=round(score, 3), matched_frames=matched, mean_distance=round(mean_d, 2),
                      pairs=pairs, specific_frames=specific, motion_frames=motion_frames)


def _specific_frames(query_positions: np.ndarray, distances: np.ndarray, residual: np.ndarray,
                     line_positions: np.ndarray, line_distances: np.ndarray, speed: float,
                     params: MatchParams, motion: np.ndarray | None = None) -> int:
    """How many matched query frames match their line clearly better than any other moment.

    A shared account template (banner, badge, title band) or a static camera
    makes every frame of one video resemble every frame of the other: the
    hits are spread over all offsets, and the best line is no better than the
    rest.  Footage that really is the same matches one moment best.  In front
    of a still camera, the moving parts (`motion` hits) can pin the moment
    down where the picture cannot.
    """
    off = residual > params.off_line_gap * max(1.0, speed)
    size = int(query_positions.max()) + 1
    picture = np.ones(len(query_positions), dtype=bool) if motion is None else ~motion
    best_off = np.full(size, params.max_distance + params.specific_margin, dtype=np.float64)
    np.minimum.at(best_off, query_positions[off & picture], distances[off & picture])
    specific = best_off[line_positions] - line_distances >= params.specific_margin
    if motion is not None and motion.any():
        on = residual <= params.time_tolerance
        best_on_motion = np.full(size, np.inf)
        np.minimum.at(best_on_motion, query_positions[on & motion], distances[on & motion])
        best_off_motion = np.full(size, params.max_distance + params.specific_margin, dtype=np.float64)
        np.minimum.at(best_off_motion, query_positions[off & motion], distances[off & motion])
        specific |= best_off_motion[line_positions] - best_on_motion[line_positions] >= params.specific_margin
    return int(specific.sum())


def _group(hits: IndexHits) -> dict[int, np.ndarray]:
    order = np.argsort(hits.media_ids, kind="stable")
    media = hits.media_ids[order]
    bounds = np.flatnonzero(np.diff(media)) + 1
    return {int(hits.media_ids[g[0]]): g for g in np.split(order, bounds) if len(g)}


def match_fingerprint(
    query: VideoFingerprint,
    indexes: Mapping[str, FrameIndex],
    stored_durations: Mapping[int, float],
    params: MatchParams | None = None,
    exclude: set[int] | None = None,
    copies: Callable[[Iterable[int]], Mapping[int, set[int]]] | None = None,
) -> list[VideoMatch]:
    """All stored videos that `query` matches, best first.

    `indexes` maps each stored frame view (`fingerprints.signals.stored_views`) to the index of its stored
    hashes; every view of the query is looked up in the indexes of its hash space.  `stored_durations[media_id]`
    gives a stored video's length (a mapping that loads on demand is fine).  Both the frame hashes and the
    mirrored hashes are looked up; a stored video matched better by the mirrored ones is reported as mirrored.
    The moving parts of still shots (the motion space) tell the moments of a still camera apart.
    `copies(media_ids)`: per stored video, the stored videos the store knows are copies of it (its stored
    matches, `MatchParams.known_copies` matches away); they are no crowd for it (`Crowd.weights`).
    """
    params = params or MatchParams()
    if not query.frames:
        return []
    times = np.array([f.timestamp for f in query.frames], dtype=np.float64)
    step = query.settings.floor_interval
    candidates: list[VideoMatch] = []
    confirmed: set[int] = set()  # stored videos already found to be copies of the query (either way round)
    for mirrored in (False, True):
        hits, positions, is_motion = _lookup_views(query, indexes, mirrored, params, exclude)
        store = StoreResemblance(len(query.frames), positions, hits.media_ids, hits.distances, ~is_motion, params)
        groups = {m: rows for m, rows in _group(hits).items() if not (exclude and m in exclude)}
        found, aligned = _specific_matches(query, groups, store, confirmed, hits, positions, is_motion, times, step,
                                           mirrored, stored_durations, params)
        confirmed |= {m.media_id for m, _ in found}
        if params.store_specificity and params.crowd_ratio > 0 and found:
            # each match weighed on at most `crowd_sample` of its frames: the lookup reaches 14 bits into the whole
            # store, about 1 ms a hash at 10^6 stored frames, so a long copy must not look up all its frames
            radius = np.full(len(query.frames), -1, dtype=np.int64)  # per query frame, how far its crowd reaches
            weighed = []
            for match, rows in found:
                sampled = sample_frames(match, times, params.crowd_sample)  # None: every frame of its hits
                keep = ~is_motion[rows]
                if sampled is not None:
                    keep &= np.isin(positions[rows], sampled)
                pictured = rows[keep]
                hit, own = nearest_by_frame(len(query.frames), positions[pictured], hits.distances[pictured],
                                            params.max_distance)
                # a match with no specific frame rests on one still picture, which every still look-alike lines
                # up with (and holds beside, in rounds): its crowd is every stored video within
                # `still_crowd_floor` bits but those as near as the match itself (its copies)
                still = params.still_crowd_floor > 0 and not is_specific(match, params)
                # a match whose query side shows one picture throughout (a slide) is that picture's evidence too,
                # however its frames pin the moment down: it must hold against the still crowd as well
                one_picture = (params.still_crowd_floor > 0 and params.still_moments > 0 and not still
                               and bool(match.pairs)
                               and moments(match, query, times, params.moment_bits).max() < params.still_moments)
                radius[hit] = np.maximum(radius[hit], crowd_radius(own[hit], params, still or one_picture))
                weighed.append((match, rows, pictured, sampled, (still, True) if one_picture else (still,)))
            crowd = Crowd(len(query.frames), *_crowd_lookup(query, indexes, mirrored, radius, params))
            known = copies([m.media_id for m, _ in found]) if copies is not None and params.known_copies > 0 else {}
            found = [(m, rows) for m, rows, pictured, sampled, ways in weighed if all(is_store_specific(
                m, crowd.weights(positions[pictured], hits.distances[pictured], m.media_id, aligned, params, still,
                                 known.get(m.media_id, ())),
                times, params, sampled) for still in ways)]
        candidates.extend(m for m, _ in found)
    best: dict[int, VideoMatch] = {}
    for match in _specific_or_nearest(candidates, params):
        current = best.get(match.media_id)
        # a symmetric picture matches both ways: mirrored only when clearly better
        if current is None or match.score > current.score * (1.2 if match.mirrored else 1.0):
            best[match.media_id] = match
    return sorted(best.values(), key=lambda m: (-m.score, m.media_id))


def _specific_matches(query: VideoFingerprint, groups: dict[int, np.ndarray], store: StoreResemblance,
                      confirmed: set[int], hits: IndexHits, positions: np.ndarray, is_motion: np.ndarray,
                      times: np.ndarray, step: float, mirrored: bool, stored_durations: Mapping[int, float],
                      params: MatchParams) -> tuple[list[tuple[VideoMatch, np.ndarray]], set[int]]:
    """The stored videos (hits `groups[media_id]`) that line up with the query and hold against the store, with
    their hits; and every stored video that lines up, whatever its weight.

    Found in rounds.  Footage stored many times (viral footage) has many copies as close to the query as one
    another; counted as a crowd, they would take one another's weight.  So the copies that hold in one round are
    left out of the rank of the next (`StoreResemblance.weights_beside_copies`), and the next round aligns and
    weighs the videos that may now hold.  A stored video that only *lines up* with the query is not left out:
    look-alikes (scrolling automata, gradients) line up by chance too, and leaving every video that lines up out
    of the crowd raised false appearances among unrelated footage 2.5-fold.  `confirmed`: copies found before
    (in the other mirrored pass).  Figures: docs/benchmarks.md, "Copies found in rounds".
    """
    found: list[tuple[VideoMatch, np.ndarray]] = []
    aligned: set[int] = set()
    pending = dict(groups)  # not aligned yet
    lined_up: dict[int, tuple[VideoMatch, np.ndarray]] = {}  # aligned, not found yet
    copies = set(confirmed)
    owns: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # per stored video, its hits' frames and distances

    def weights(media_id: int, rows: np.ndarray) -> np.ndarray:
        if media_id not in owns:
            owns[media_id] = store.own(rows)
        return _weights(store, rows, copies_closer, owns[media_id])

    while True:
        copies_closer = store.copies_closer(copies) if copies and params.store_specificity else None
        for media_id, rows in list(pending.items()):
            if not could_be_specific(weights(media_id, rows), params):
                continue
            del pending[media_id]
            match = align_candidate(media_id, times, positions[rows], hits.timestamps[rows],
                                    hits.distances[rows].astype(np.float64), query.duration,
                                    stored_durations[media_id], step, mirrored, params,
                                    is_motion[rows] if is_motion.any() else None)
            if match is None:
                continue
            aligned.add(media_id)
            picture = rows[~is_motion[rows]]
            if not is_surprising(match, query, positions[picture], hits.timestamps[picture],
                                 hits.distances[picture], times, stored_durations[media_id], params):
                continue
            lined_up[media_id] = (match, rows)
        held = [media_id for media_id, (match, rows) in lined_up.items()
                if is_store_specific(match, weights(media_id, rows), times, params)]
        if not held:
            return found, aligned
        for media_id in held:
            found.append(lined_up.pop(media_id))
        copies |= set(held)
        if not params.store_specificity:
            return found, aligned


def _weights(store: StoreResemblance, rows: np.ndarray, copies_closer: np.ndarray | None,
             own: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Per query frame, the weight of the stored video of hits `rows`: against the whole store, or beside the
    copies already found (`copies_closer`), whichever is more.  `own`: `store.own(rows)`, kept by the caller
    across rounds."""
    own = own or store.own(rows)
    plain = store.weights(rows, own)
    return plain if copies_closer is None else np.maximum(plain, store.weights_beside_copies(rows, copies_closer,
                                                                                              own))


def _lookup_views(query: VideoFingerprint, indexes: Mapping[str, FrameIndex], mirrored: bool,
                  params: MatchParams, exclude: set[int] | None) -> tuple[IndexHits, np.ndarray, np.ndarray]:
    """Every query view looked up in the stored indexes of its space: (hits, query frame of each hit,
    whether each hit is outside the picture space)."""
    parts: list[tuple[IndexHits, np.ndarray, bool]] = []
    for space in spaces():
        views = [v for v in frame_views() if v.space == space]
        # the stored indexes, grouped by the query views looked up in them (a view with `against_own` False, a
        # window, is not looked up in the index of its own kind: two posts with one sticker are not one footage)
        groups: dict[tuple[str, ...], list[FrameIndex]] = {}
        for stored_view in stored_views():
            if stored_view.space == space and stored_view.name in indexes:
                allowed = tuple(v.name for v in views if v.against_own or v.name != stored_view.name)
                groups.setdefault(allowed, []).append(indexes[stored_view.name])
        for allowed, stored in groups.items():
            looked_up = [v.hashes_of(query.frames, mirrored) for v in views if v.name in allowed]
            frame_of = np.concatenate([p for p, _ in looked_up]) if looked_up else np.zeros(0, dtype=np.int64)
            hashes = np.concatenate([h for _, h in looked_up]) if looked_up else np.zeros(0, dtype=np.uint64)
            if not len(hashes):
                continue
            for hits in _lookup(stored, hashes, params, exclude):
                parts.append((hits, frame_of[hits.query_positions], space != PICTURE_SPACE))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return IndexHits(empty, empty, np.zeros(0), np.zeros(0, dtype=np.int16)), empty, np.zeros(0, dtype=bool)
    hits = IndexHits(*(np.concatenate([getattr(h, f) for h, _, _ in parts])
                       for f in ("query_positions", "media_ids", "timestamps", "distances")))
    positions = np.concatenate([p for _, p, _ in parts])
    is_other_space = np.concatenate([np.full(len(h), other) for h, _, other in parts])
    return hits, positions, is_other_space


def _crowd_lookup(query: VideoFingerprint, indexes: Mapping[str, FrameIndex], mirrored: bool, radius: np.ndarray,
                  params: MatchParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query frame, stored video, distance) of every picture-space hit of the query frames within `radius[frame]`
    bits (-1: not looked up) in the whole store: the crowd of `crowd_ratio`, complete (the two-stage lookup sees
    only the videos with a frame within `first_pass_distance`).  Looked up only for the frames of matches that
    passed every other test, and not further than `Crowd` will look: a copy 2 bits away needs its crowd within 8,
    which a multi-index answers far faster than 14 bits on a large store (8.5 against 215 ms for 80 hashes at
    10^7 stored frames, docs/benchmarks.md)."""
    stored = [indexes[v.name] for v in stored_views() if v.space == PICTURE_SPACE and v.name in indexes]
    parts = []
    for view in frame_views():
        if view.space != PICTURE_SPACE:
            continue
        at, hashes = view.hashes_of(query.frames, mirrored)
        reach = radius[at]
        # two lookups at most (each call costs): the near frames as far as `first_pass_distance`, the rest as far
        # as the furthest of them; then each frame's hits are cut to its own reach
        near = (reach >= 0) & (reach <= params.first_pass_distance)
        far = reach > params.first_pass_distance
        for keep in (near, far):
            if not keep.any():
                continue
            bits = max(params.first_pass_distance, int(reach[keep].max()))
            for index in stored:
                hits = index.query(hashes[keep], bits, complete_to=params.crowd_exact_bits)
                cut = hits.distances <= reach[keep][hits.query_positions]  # each frame as far as its own reach
                parts.append((at[keep][hits.query_positions][cut], hits.media_ids[cut], hits.distances[cut]))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))


def _lookup(indexes: Sequence[FrameIndex], hashes: np.ndarray, params: MatchParams,
            exclude: set[int] | None) -> list[IndexHits]:
    """Every stored frame within max_distance of `hashes`, from the videos worth aligning, per index.

    Two stages: the videos with a frame within `first_pass_distance` in any of the indexes (an index
    answers that radius far faster: 39 ms against 0.6 s at 10^7 frames, see docs/benchmarks.md), then all
    their frames at max_distance.  A video none of whose frames comes that near is not aligned: on the
    re-upload suite every true original had at least 6 query hashes within 8 bits.
    """
    if not 0 < params.first_pass_distance < params.max_distance:
        return [index.query(hashes, params.max_distance) for index in indexes]
    candidates: set[int] = set()
    for index in indexes:
        candidates.update(np.unique(index.query(hashes, params.first_pass_distance).media_ids).tolist())
    candidates -= exclude or set()
    return [index.query_media(hashes, params.max_distance, candidates) for index in indexes]


FLAT_LEVEL_TOLERANCE = 16.0  # grey levels by which two flat frames may differ and still be "the same"


def extend_over_flat(match: VideoMatch, query_flat: Sequence[tuple[float, float]],
                     stored_flat: Sequence[tuple[float, float]], query_duration: float, stored_duration: float,
                     sample_step: float, params: MatchParams) -> VideoMatch:
    """The match with its outer segment edges carried over flat frames that both videos show where they align.

    Flat frames (black, a fade, a plain card) get no hash, so a copy that
    starts or ends on them ends its segments at the first or last frame with
    content, seconds away from where the copy really starts.  A flat query
    frame within `max_gap` of a segment's outer edge (or of a flat frame
    already taken) is taken when the stored video, at the moment the match's
    line puts it, shows a flat frame of about the same grey level.  Nothing
    else changes: no match is made this way, and the matched pairs stay as
    they were; `flat_frames` counts the frames taken.
    """
    if not match.segments or not query_flat or not stored_flat:
        return match
    s_times = np.array([t for t, _ in stored_flat])
    s_levels = np.array([level for _, level in stored_flat])

    def agrees(t: float, level: float) -> bool:
        near = np.abs(s_times - (match.speed * t + match.offset)) <= params.time_tolerance
        return bool((near & (np.abs(s_levels - level) <= FLAT_LEVEL_TOLERANCE)).any())

    first, last = match.segments[0], match.segments[-1]
    start, taken = first.query_start, 0
    for t, level in sorted((f for f in query_flat if f[0] < first.query_start), reverse=True):
        if start - t > params.max_gap or not agrees(t, level):
            break
        start, taken = t, taken + 1
    end, last_flat = last.query_end, None
    for t, level in sorted(f for f in query_flat if f[0] >= last.query_end):
        if t - (last_flat if last_flat is not None else last.query_end) > params.max_gap or not agrees(t, level):
            break
        last_flat, taken = t, taken + 1
    if last_flat is not None:
        end = min(last_flat + sample_step, query_duration) if query_duration else last_flat + sample_step
    if not taken:
        return match
    at = lambda t: max(0.0, match.speed * t + match.offset)  # noqa: E731
    segments = list(match.segments)
    segments[0] = Segment(round(start, 3), first.query_end, round(at(start), 3) if start < first.query_start
                          else first.stored_start, first.stored_end)
    tail = segments[-1]
    segments[-1] = Segment(tail.query_start, round(end, 3), tail.stored_start,
                           round(min(at(end), stored_duration) if stored_duration else at(end), 3)
                           if end > last.query_end else tail.stored_end)
    q_len = sum(s.query_end - s.query_start for s in segments)
    s_len = sum(max(0.0, s.stored_end - s.stored_start) for s in segments)
    return replace(match, segments=segments, flat_frames=taken,
                   query_coverage=round(min(1.0, q_len / query_duration), 4) if query_duration else 0.0,
                   stored_coverage=round(min(1.0, s_len / stored_duration), 4) if stored_duration else 0.0)


def is_specific(match: VideoMatch, params: MatchParams) -> bool:
    return match.specific_frames >= params.min_specific_share * match.matched_frames


def _specific_or_nearest(candidates: list[VideoMatch], params: MatchParams) -> list[VideoMatch]:
    """Candidates whose frames pin down a moment, plus the nearest of those that cannot.

    Footage in which every moment looks alike (a static camera, a slide) and
    unrelated posts in one account template both give matches with no
    specific frames.  Of those only near-identical ones are kept, and only the
    nearest: a static scene can be told from another take of it by distance,
    not by timing.
    """
    specific = [m for m in candidates if is_specific(m, params)]
    vague = [m for m in candidates if not is_specific(m, params) and m.mean_distance <= params.static_max_distance]
    if any(m.motion_frames >= params.min_frames for m in specific):
        # what moves in front of a still camera told one take from the others: the rest look alike, no more
        vague = [m for m in vague if m.motion_frames >= params.min_frames]
    if vague:
        nearest = min(m.mean_distance for m in vague)
        specific += [m for m in vague if m.mean_distance <= nearest + params.static_margin]
    return specific
