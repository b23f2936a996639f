"""From candidate keyframes to video matches: geometry first, then time.

Descriptor votes (`fingerprints.keypoints.index`) only shortlist.  A keyframe
pair counts when its descriptors, matched with a ratio test, agree on one
plausible affine map (RANSAC): a small rotation, a scale, a stretch, a crop or
a window all are affine maps of the picture, unrelated pictures almost never
give a dozen keypoints that agree on one.  Inliers must also spread over the
picture: a logo or a line of text gives a tight cluster.

Then time: verified pairs vote for a line ``stored_time = speed * query_time
+ offset`` (speeds 0.5-2), and a match needs several query keyframes on one
line that match *that* moment better than any other (a shared template or a
still camera matches every moment alike, see `_specific`).  Short queries
need fewer keyframes when their inliers are strong.  A query keyframe that
verifies against many different videos which do not align with the query is a
generic picture (a black card, a shared intro) and is left out; copies that
align (a widely re-uploaded clip) are not such a crowd.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from .. import align  # imported as a module: align imports the signal registry, which imports this
from .features import Keyframes
from .index import KeyframeHits

ROUTE = "keypoints"


@dataclass(frozen=True)
class KeypointMatchParams:
    shortlist: int = 12  # stored videos verified per query view and round
    shortlist_rounds: int = 6  # further shortlists are verified while the last one found a copy, up to this many
    min_votes: int = 4  # descriptor votes for a keyframe pair to be verified
    pairs_per_frame: int = 3  # stored keyframes verified per query keyframe
    give_up: int = 10  # a stored video whose best-voted pairs fail this many times running is not verified further
    ratio: float = 0.85  # Lowe's ratio test
    ransac_px: float = 4.0  # reprojection error (analysis pixels) of an inlier
    min_inliers: int = 10
    strong_inliers: int = 30  # a short query may match with fewer keyframes when this many agree
    min_spread: float = 0.03  # inliers' convex hull, as a share of the stored picture, at least
    max_rotation: float = 25.0  # degrees
    min_scale: float = 0.2  # stored pixels per query pixel
    max_scale: float = 4.0
    max_anisotropy: float = 1.9  # ratio of the two scales (a 0.75 x 1.33 stretch is 1.78)
    max_shear: float = 0.25
    min_speed: float = 0.5
    max_speed: float = 2.0
    speed_step: float = 1.03
    real_time_preference: float = 0.85  # share of the best line's score at which speed 1 still wins
    tolerance: float = 0.8  # seconds off the line that still count as on it (keyframes are ~1.2 s apart)
    off_line: float = 2.5  # seconds off the line beyond which a pair shows another moment
    specific_ratio: float = 1.15  # inliers on the line against the best elsewhere, for a specific keyframe
    min_specific_share: float = 0.5
    min_frames: int = 3  # query keyframes on the line
    short_query: float = 6.0  # seconds: a query or stored video shorter than this matches with 2 strong keyframes
    max_gap: float = 4.0  # seconds between matched query keyframes that split a segment
    generic_media: int = 5  # a query keyframe verified against more stored videos than this (not aligned) is generic


@dataclass(frozen=True)
class Verified:
    query_frame: int
    stored_frame: int
    query_time: float
    stored_time: float
    inliers: int
    affine: np.ndarray  # 2x3, query picture -> stored picture
    query_size: tuple[int, int]  # pictures' (width, height)
    stored_size: tuple[int, int]


def verify_pair(q_pts: np.ndarray, q_desc: np.ndarray, s_pts: np.ndarray, s_desc: np.ndarray,
                s_size: tuple[int, int], params: KeypointMatchParams,
                matcher: cv2.BFMatcher | None = None) -> tuple[int, np.ndarray | None]:
    """(inliers, affine query -> stored) of one keyframe pair; (0, None) when it does not verify."""
    if len(q_desc) < params.min_inliers or len(s_desc) < params.min_inliers:
        return 0, None
    matcher = matcher or cv2.BFMatcher(cv2.NORM_HAMMING)
    knn = matcher.knnMatch(q_desc, s_desc, k=2)
    good = [m[0] for m in knn if len(m) == 2 and m[0].distance < params.ratio * m[1].distance]
    if len(good) < params.min_inliers:
        return 0, None
    # one stored keypoint taken by several query keypoints (one corner at two pyramid levels): keep the nearest
    good.sort(key=lambda m: m.distance)
    _, first = np.unique([m.trainIdx for m in good], return_index=True)
    good = [good[i] for i in first]
    src = q_pts[[m.queryIdx for m in good]]
    dst = s_pts[[m.trainIdx for m in good]]
    if len(src) < params.min_inliers:
        return 0, None
    affine, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=params.ransac_px,
                                        maxIters=2000, confidence=0.995, refineIters=10)
    if affine is None or mask is None:
        return 0, None
    inl = mask.ravel().astype(bool)
    n = int(inl.sum())
    if n < params.min_inliers or not plausible(affine, params):
        return 0, None
    w, h = s_size
    if len(dst[inl]) < 3 or cv2.contourArea(cv2.convexHull(dst[inl].astype(np.float32))) < params.min_spread * w * h:
        return 0, None
    return n, affine


def decompose(affine: np.ndarray) -> tuple[float, float, float, float]:
    """(rotation degrees, scale x, scale y, shear) of the linear part (QR: rotation times upper triangular)."""
    a = affine[:, :2]
    sx = math.hypot(a[0, 0], a[1, 0])
    rotation = math.degrees(math.atan2(a[1, 0], a[0, 0]))
    det = float(np.linalg.det(a))
    sy = det / sx if sx > 1e-9 else 0.0
    shear = (a[0, 0] * a[0, 1] + a[1, 0] * a[1, 1]) / (sx * sx) if sx > 1e-9 else 0.0
    return rotation, sx, sy, shear


def plausible(affine: np.ndarray, params: KeypointMatchParams) -> bool:
    """A re-upload's edit: no flip (mirrors are their own query view), a small rotation, sane scales."""
    rotation, sx, sy, shear = decompose(affine)
    if sy <= 0:
        return False
    return (abs(rotation) <= params.max_rotation and params.min_scale <= min(sx, sy)
            and max(sx, sy) <= params.max_scale and max(sx, sy) / min(sx, sy) <= params.max_anisotropy
            and abs(shear) <= params.max_shear)


def rank_candidates(hits: KeyframeHits, params: KeypointMatchParams, exclude: set[int]) -> list[int]:
    """Stored videos by their votes, best first: the sum over query keyframes of their best pair's votes."""
    strong = hits.votes >= params.min_votes
    best: dict[tuple[int, int], int] = {}
    for qi, mi, vi in zip(hits.query_frames[strong].tolist(), hits.media_ids[strong].tolist(),
                          hits.votes[strong].tolist()):
        if mi not in exclude and vi > best.get((qi, mi), 0):
            best[(qi, mi)] = vi
    score: dict[int, int] = {}
    for (_, mi), vi in best.items():
        score[mi] = score.get(mi, 0) + vi
    return sorted(score, key=lambda k: (-score[k], k))


def verify_candidates(query: Keyframes, hits: KeyframeHits, load: Callable[[int], Keyframes],
                      params: KeypointMatchParams, media: Sequence[int]) -> dict[int, list[Verified]]:
    """Verified keyframe pairs per stored media of `media` (a shortlist of `rank_candidates`)."""
    if not len(hits.votes):
        return {}
    strong = hits.votes >= params.min_votes
    q, m, s, v = (a[strong] for a in (hits.query_frames, hits.media_ids, hits.stored_frames, hits.votes))
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    out: dict[int, list[Verified]] = {}
    for media_id in media:
        stored = load(media_id)
        rows = np.flatnonzero(m == media_id)
        order = rows[np.lexsort((q[rows], -v[rows]))]  # the best-voted pairs first
        taken: dict[int, int] = {}
        pairs: list[Verified] = []
        tried = 0
        for r in order:
            qi, si = int(q[r]), int(s[r])
            if taken.get(qi, 0) >= params.pairs_per_frame or si >= len(stored):
                continue
            if not pairs and tried >= params.give_up:
                break  # its best-voted pairs all failed: chance votes (flat or repeated texture)
            taken[qi] = taken.get(qi, 0) + 1
            tried += 1
            q_pts, q_desc = query.frame(qi)
            s_pts, s_desc = stored.frame(si)
            s_size = (int(stored.sizes[si][0]), int(stored.sizes[si][1]))
            n, affine = verify_pair(q_pts, q_desc, s_pts, s_desc, s_size, params, matcher)
            if affine is not None:
                pairs.append(Verified(qi, si, float(query.times[qi]), float(stored.times[si]), n, affine,
                                      (int(query.sizes[qi][0]), int(query.sizes[qi][1])), s_size))
        if pairs:
            out[media_id] = pairs
    return out


def _speeds(params: KeypointMatchParams) -> np.ndarray:
    lo = math.ceil(math.log(params.min_speed) / math.log(params.speed_step))
    hi = math.floor(math.log(params.max_speed) / math.log(params.speed_step))
    return params.speed_step ** np.arange(lo, hi + 1)


def _line(pairs: list[Verified], params: KeypointMatchParams) -> tuple[float, float, float]:
    """(score, speed, offset) of the line through most query keyframes, weighting each by its best inliers."""
    order = np.argsort([p.query_frame for p in pairs], kind="stable")
    qt = np.array([pairs[i].query_time for i in order])
    st = np.array([pairs[i].stored_time for i in order])
    qf = np.array([pairs[i].query_frame for i in order])
    w = np.array([min(pairs[i].inliers, 60) for i in order], np.float64)
    starts = np.flatnonzero(np.r_[True, qf[1:] != qf[:-1]])  # each query keyframe's first pair
    best = real_time = (-1.0, 1.0, 0.0)
    for speed in _speeds(params):
        offsets = st - speed * qt
        candidates = np.unique(np.round(offsets, 1))
        on = np.abs(offsets[None, :] - candidates[:, None]) <= params.tolerance  # (candidates, pairs)
        # per candidate line: the sum over query keyframes of their best pair's weight on it
        scores = np.maximum.reduceat(on * w[None, :], starts, axis=1).sum(axis=1)
        k = int(np.argmax(scores))
        score = float(scores[k])
        if abs(speed - 1.0) < 1e-9 and score > real_time[0]:
            real_time = (score, 1.0, float(np.median(offsets[on[k]])))
        if score > best[0]:
            best = (score, float(speed), float(np.median(offsets[on[k]])))
    # a speed change must clearly beat real time: keyframes a second apart tilt a line easily
    return real_time if real_time[0] >= params.real_time_preference * best[0] else best


def align_pairs(media_id: int, pairs: list[Verified], query_duration: float, stored_duration: float,
                query_interval: float, mirrored: bool, params: KeypointMatchParams) -> align.VideoMatch | None:
    """The verified pairs of one stored video as a match, or None when they do not pin one moment down."""
    if not pairs:
        return None
    _, speed, offset = _line(pairs, params)
    qt = np.array([p.query_time for p in pairs])
    st = np.array([p.stored_time for p in pairs])
    residual = np.abs(st - (speed * qt + offset))
    on = residual <= params.tolerance
    if on.sum() >= 3 and np.ptp(qt[on]) >= 3.0:  # refit the line on its own pairs
        slope, intercept = np.polyfit(qt[on], st[on], 1)
        if params.min_speed <= slope <= params.max_speed and abs(math.log(slope / speed)) < 0.1:
            speed, offset = float(slope), float(intercept)
            residual = np.abs(st - (speed * qt + offset))
            on = residual <= params.tolerance
    on_pairs = [p for p, o in zip(pairs, on) if o]
    best_on: dict[int, Verified] = {}
    for p in on_pairs:
        if p.query_frame not in best_on or p.inliers > best_on[p.query_frame].inliers:
            best_on[p.query_frame] = p
    frames = sorted(best_on.values(), key=lambda p: p.query_time)
    off = residual > params.off_line * max(1.0, speed)
    best_off: dict[int, int] = {}
    for p, o in zip(pairs, off):
        if o:
            best_off[p.query_frame] = max(best_off.get(p.query_frame, 0), p.inliers)
    specific = [p for p in frames if p.inliers >= params.specific_ratio * best_off.get(p.query_frame, 0)]
    strong = [p for p in specific if p.inliers >= params.strong_inliers]
    stored_frames = {p.stored_frame for p in specific}
    # a short video (either side: a leaked excerpt is stored first) has few keyframes to agree
    short = min(query_duration or math.inf, stored_duration or math.inf) < params.short_query
    enough = (len(specific) >= params.min_frames and len(stored_frames) >= 2) or (short and len(strong) >= 2)
    if not enough or len(specific) < params.min_specific_share * len(frames):
        return None

    segments: list[align.Segment] = []
    start = 0
    for i in range(1, len(frames) + 1):
        if i == len(frames) or frames[i].query_time - frames[i - 1].query_time > params.max_gap:
            q0 = frames[start].query_time
            q1 = min(frames[i - 1].query_time + query_interval, query_duration or math.inf)
            s0 = max(0.0, speed * q0 + offset)
            s1 = min(speed * q1 + offset, stored_duration or math.inf)
            segments.append(align.Segment(round(q0, 3), round(q1, 3), round(s0, 3), round(max(s0, s1), 3)))
            start = i
    q_len = sum(s.query_end - s.query_start for s in segments)
    s_len = sum(s.stored_end - s.stored_start for s in segments)
    return align.VideoMatch(
        media_id=media_id,
        query_coverage=round(min(1.0, q_len / query_duration), 4) if query_duration else 0.0,
        stored_coverage=round(min(1.0, s_len / stored_duration), 4) if stored_duration else 0.0,
        segments=segments, mirrored=mirrored, speed=round(speed, 4), offset=round(offset, 3),
        score=round(float(sum(min(1.0, p.inliers / params.strong_inliers) for p in specific)), 3),
        matched_frames=len(frames), mean_distance=0.0, specific_frames=len(specific),
        transform=transform_of(frames), routes=[ROUTE])


def transform_of(frames: list[Verified]) -> dict[str, float]:
    """The edit's geometry, from the pair with most inliers: rotation, scales, and which part of each picture
    the other shows (x, y, w, h as fractions of that picture)."""
    best = max(frames, key=lambda p: p.inliers)
    return {"inliers": float(np.median([p.inliers for p in frames])), **geometry(best.affine, best.query_size,
                                                                                best.stored_size)}


def geometry(affine: np.ndarray, query_size: tuple[int, int], stored_size: tuple[int, int]) -> dict[str, float]:
    rotation, sx, sy, _ = decompose(affine)
    out = {"rotation": round(rotation, 2), "scale_x": round(sx, 3), "scale_y": round(sy, 3)}
    full = np.vstack([affine, [0.0, 0.0, 1.0]])
    for name, m, (w, h), (w2, h2) in (("stored", full, query_size, stored_size),
                                       ("query", np.linalg.inv(full), stored_size, query_size)):
        corners = np.array([[0, 0, 1], [w, 0, 1], [0, h, 1], [w, h, 1]], np.float64).T
        mapped = (m @ corners)[:2]
        x0, x1 = np.clip([mapped[0].min() / w2, mapped[0].max() / w2], 0.0, 1.0)
        y0, y1 = np.clip([mapped[1].min() / h2, mapped[1].max() / h2], 0.0, 1.0)
        out.update({f"{name}_x": round(float(x0), 3), f"{name}_y": round(float(y0), 3),
                    f"{name}_w": round(float(x1 - x0), 3), f"{name}_h": round(float(y1 - y0), 3)})
    return out


def match_keyframes(query: Keyframes, query_lookup: Callable[[Keyframes], KeyframeHits],
                    load: Callable[[int], Keyframes], durations: Mapping[int, float], query_duration: float,
                    query_interval: float, exclude: set[int], params: KeypointMatchParams) -> list[align.VideoMatch]:
    """Matches of a query's keyframes (and its query-time views) in an index, best first."""
    cache: dict[int, Keyframes] = {}

    def cached(media_id: int) -> Keyframes:
        if media_id not in cache:
            cache[media_id] = load(media_id)
        return cache[media_id]

    verified: dict[tuple[int, bool], list[Verified]] = {}
    aligned: set[int] = set()  # stored videos the pairs verified so far already align with

    def look(name: str, view: Keyframes, skip: set[int]) -> None:
        if not view.keypoint_count:
            return
        hits = query_lookup(view)
        ranked = rank_candidates(hits, params, skip)
        # shortlists in rounds while they keep finding copies: footage stored many times (a widely
        # re-uploaded clip) must not crowd its own less-voted copies (edited, in a window) out of one shortlist
        for start in range(0, min(len(ranked), params.shortlist * params.shortlist_rounds), params.shortlist):
            found = verify_candidates(view, hits, cached, params, ranked[start:start + params.shortlist])
            new = 0
            for media_id, pairs in found.items():
                key = (media_id, name == "mirrored")
                verified.setdefault(key, []).extend(pairs)
                if media_id not in aligned and align_pairs(media_id, verified[key], query_duration,
                                                           float(durations[media_id]), query_interval, key[1],
                                                           params):
                    aligned.add(media_id)
                    new += 1
            if not new:
                break

    look("", query, exclude)
    for name, view in query.views.items():  # the mirror, then a window or one side: for what is not found yet
        look(name, view, exclude | aligned)
    # generic query keyframes: verified against many different videos that do not align with the query (a
    # shared intro or template shows at any moment); copies that align are no crowd: viral footage is stored
    # many times, and each copy must still be found
    media_of_frame: dict[int, set[int]] = {}
    for (media_id, _), pairs in verified.items():
        if media_id in aligned:
            continue
        for p in pairs:
            media_of_frame.setdefault(p.query_frame, set()).add(media_id)
    generic = {f for f, ms in media_of_frame.items() if len(ms) > params.generic_media}
    return _best(verified, generic, query_duration, durations, query_interval, params)


def _best(verified: dict[tuple[int, bool], list[Verified]], generic: set[int], query_duration: float,
          durations: Mapping[int, float], query_interval: float,
          params: KeypointMatchParams) -> list[align.VideoMatch]:
    best: dict[int, align.VideoMatch] = {}
    for (media_id, mirrored), pairs in verified.items():
        pairs = [p for p in pairs if p.query_frame not in generic]
        match = align_pairs(media_id, pairs, query_duration, float(durations[media_id]), query_interval,
                            mirrored, params)
        if match is None:
            continue
        current = best.get(media_id)
        if current is None or match.score > current.score * (1.2 if mirrored else 1.0):
            best[media_id] = match
    return sorted(best.values(), key=lambda m: (-m.score, m.media_id))
