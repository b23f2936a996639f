"""Keyframes and their ORB keypoints: what a video stores for geometry-tolerant matching.

A global hash of the whole picture changes when the picture is rotated,
stretched, cropped off-centre or shrunk into a window; local features do
not: each keypoint describes a small patch, and a copy keeps most patches.
The collector takes a keyframe at every scene cut and about once per
`interval` seconds (a bounded number per video: long videos are thinned),
extracts ORB keypoints spread over a grid (a few strong corners must not take
the whole budget), and stores positions and 32-byte descriptors compactly.

Keypoints on content that stands still are dropped: an account template, a
logo or the background of a still camera gives geometrically perfect inlier
sets at *any* time offset, so it would match unrelated posts of the same
account (measured in the probe behind `/work/shared/notes/local-features.md`).
A keypoint is still when its neighbourhood is the same in a keyframe a second
or more away; what is left is footage that moves or changes.  Detection is
confined to what moves (the budget is not spent on what would be dropped).
Still footage (slides, a still camera where nothing moves) therefore has no
keypoints: keeping them was measured (docs/benchmarks.md, session 17) and
matched account templates over flat footage; the frame hashes cover it.

Where `fingerprint_video` found a window in the picture (a picture-in-picture
window, a screen recording's player, the sides of a split screen), the window
is also enlarged to about the picture's size and gets a keypoint budget of its
own; its keypoints are kept with the picture's, in the picture's coordinates.

Queries get extra views (`query=True`), never stored: the mirrored picture,
and its halves enlarged twice, which give a small picture-in-picture window,
a screen recording's player or one side of a split screen a keypoint budget
of its own at about the stored scale.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

DESCRIPTOR_BYTES = 32
_POINT_SCALE = 16.0  # positions are stored in 1/16 analysis pixels (uint16: pictures up to 4095 px)
_MAGIC = b"KPF1"
_HEADER = struct.Struct("<4sII")  # magic, keyframes, keypoints


@dataclass(frozen=True)
class KeypointParams:
    """Every parameter that changes stored keypoints (see `KeypointSignal.version`)."""

    interval: float = 1.2  # seconds between keyframes inside a shot (stored videos)
    query_interval: float = 0.5  # ... for queries: more chances to land near a stored keyframe
    parts_interval: float = 1.0  # seconds between query keyframes that get the (costly) enlarged halves
    max_keyframes: int = 3000  # per video; beyond this the keyframes are thinned (every other one dropped)
    keypoints: int = 200  # kept per keyframe, spread over a grid
    detected: int = 700  # detected per keyframe before the spread
    grid: tuple[int, int] = (4, 3)  # cells (long side, short side) the kept keypoints are spread over
    fast_threshold: int = 10
    pad: int = 16  # picture edges are padded by reflection so corners near the edge get descriptors
    min_std: float = 6.0  # flatter pictures get no keyframe
    min_side: int = 32
    still_level: int = 4  # grey levels (lightly blurred) within which a pixel is the same in two frames
    still_patch: int = 11  # pixels: the neighbourhood of a keypoint judged for stillness
    still_share: float = 0.4  # a keypoint whose neighbourhood is this much the same a second away stands still
    still_gap: float = 0.9  # seconds to the frames it is compared with (each side)
    still_reach: float = 3.0  # ... at most
    min_moving: float = 0.02  # detection is confined to what moves when at least this share of the picture does
    window_zoom: float = 3.0  # a window inside the picture is enlarged up to this much for keypoints of its own
    min_window_zoom: float = 1.4  # ... and gets none when it would be enlarged less (it has the picture's budget)


@dataclass(eq=False)
class Keyframes:
    """Keypoints of a video's keyframes; keyframe k owns points and descriptors ``starts[k]:starts[k+1]``.

    `points` are analysis pixels of the keyframe's active picture, whose size
    (width, height) is `sizes[k]`.  `views` are query-time views (`mirrored`,
    halves), in the same layout and their own picture coordinates; they are never stored.
    """

    times: np.ndarray  # float32 (K,)
    sizes: np.ndarray  # uint16 (K, 2): picture width, height
    cuts: np.ndarray  # bool (K,): the keyframe opens a shot
    starts: np.ndarray  # int64 (K+1,)
    points: np.ndarray  # float32 (N, 2): x, y
    descriptors: np.ndarray  # uint8 (N, 32)
    views: dict[str, Keyframes] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.times)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keyframes):
            return NotImplemented
        return (all(np.array_equal(getattr(self, f), getattr(other, f))
                    for f in ("times", "sizes", "cuts", "starts", "points", "descriptors"))
                and self.views == other.views)

    __hash__ = None  # mutable arrays

    @property
    def keypoint_count(self) -> int:
        return int(self.starts[-1])

    def frame(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(points, descriptors) of keyframe k."""
        a, b = int(self.starts[k]), int(self.starts[k + 1])
        return self.points[a:b], self.descriptors[a:b]

    def frame_of_point(self) -> np.ndarray:
        """The keyframe of every keypoint."""
        return np.repeat(np.arange(len(self.times)), np.diff(self.starts))

    @staticmethod
    def empty() -> Keyframes:
        return Keyframes(np.zeros(0, np.float32), np.zeros((0, 2), np.uint16), np.zeros(0, bool),
                         np.zeros(1, np.int64), np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8))

    def to_bytes(self) -> bytes:
        """Compact bytes of the stored layout (views are dropped): 11 B per keyframe, 36 B per keypoint."""
        counts = np.diff(self.starts)
        if len(counts) and int(counts.max()) > 0xFFFF:
            raise ValueError("a keyframe has more than 65535 keypoints: lower KeypointParams.keypoints")
        points = np.clip(np.round(self.points * _POINT_SCALE), 0, 0xFFFF).astype("<u2")
        return b"".join([_HEADER.pack(_MAGIC, len(self.times), self.keypoint_count),
                         self.times.astype("<f4").tobytes(), self.sizes.astype("<u2").tobytes(),
                         self.cuts.astype(np.uint8).tobytes(), counts.astype("<u2").tobytes(),
                         points.tobytes(), np.ascontiguousarray(self.descriptors, np.uint8).tobytes()])

    @staticmethod
    def from_bytes(blob: bytes) -> Keyframes:
        if len(blob) < _HEADER.size:
            raise ValueError(f"keypoint data too short ({len(blob)} bytes): recompute the video's fingerprint")
        magic, k, n = _HEADER.unpack_from(blob)
        if magic != _MAGIC:
            raise ValueError(f"not keypoint data (starts with {magic!r}): recompute the video's fingerprint")
        expected = _HEADER.size + 11 * k + 36 * n
        if len(blob) != expected:
            raise ValueError(f"keypoint data of {len(blob)} bytes, expected {expected} for {k} keyframes and "
                             f"{n} keypoints: the stored value is damaged, recompute the video's fingerprint")
        at = _HEADER.size

        def take(dtype: str, count: int) -> np.ndarray:
            nonlocal at
            out = np.frombuffer(blob, dtype=dtype, count=count, offset=at)
            at += out.nbytes
            return out
        times = take("<f4", k).astype(np.float32)
        sizes = take("<u2", 2 * k).reshape(k, 2).astype(np.uint16)
        cuts = take("u1", k).astype(bool)
        counts = take("<u2", k).astype(np.int64)
        points = take("<u2", 2 * n).reshape(n, 2).astype(np.float32) / _POINT_SCALE
        descriptors = take("u1", DESCRIPTOR_BYTES * n).reshape(n, DESCRIPTOR_BYTES).copy()
        if int(counts.sum()) != n:
            raise ValueError("keypoint counts do not add up: the stored value is damaged, recompute it")
        return Keyframes(times, sizes, cuts, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                         points, descriptors)


class OrbExtractor:
    """ORB keypoints of a grey picture, spread over a grid, with their descriptors."""

    def __init__(self, params: KeypointParams):
        self.params = params
        self.orb = cv2.ORB_create(nfeatures=params.detected, scaleFactor=1.2, nlevels=6, edgeThreshold=params.pad,
                                  patchSize=31, fastThreshold=params.fast_threshold)

    def __call__(self, picture: np.ndarray, moving: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(points float32 (n, 2), descriptors uint8 (n, 32)); n <= params.keypoints.

        `moving` (uint8, the picture's size; nonzero where the picture changes) confines detection to what
        moves, so the keypoint budget is not spent on still content that would be dropped anyway.
        """
        p = self.params
        h, w = picture.shape
        padded = cv2.copyMakeBorder(picture, p.pad, p.pad, p.pad, p.pad, cv2.BORDER_REFLECT_101)
        mask = np.zeros(padded.shape, np.uint8)
        mask[p.pad:p.pad + h, p.pad:p.pad + w] = 255 if moving is None else moving
        found, desc = self.orb.detectAndCompute(padded, mask)
        if desc is None or not found:
            return np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8)
        pts = np.array([k.pt for k in found], np.float32) - p.pad
        response = np.array([k.response for k in found], np.float32)
        keep = spread(pts, response, w, h, p.keypoints, p.grid)
        return np.ascontiguousarray(pts[keep]), np.ascontiguousarray(desc[keep])


def spread(points: np.ndarray, response: np.ndarray, width: int, height: int, budget: int,
           grid: tuple[int, int]) -> np.ndarray:
    """Indexes of at most `budget` points: the strongest of each grid cell first, then the strongest left."""
    if len(points) <= budget:
        return np.arange(len(points))
    gx, gy = grid if width >= height else grid[::-1]
    cell = (np.minimum(points[:, 0] * gx // max(1, width), gx - 1) * gy
            + np.minimum(points[:, 1] * gy // max(1, height), gy - 1)).astype(np.int64)
    order = np.lexsort((-response, cell))
    rank = np.empty(len(points), np.int64)
    sorted_cells = cell[order]
    first = np.searchsorted(sorted_cells, sorted_cells)
    rank[order] = np.arange(len(points)) - first
    quota = budget // (gx * gy)
    chosen = rank < quota
    rest = np.flatnonzero(~chosen)
    extra = rest[np.argsort(-response[rest])][:budget - int(chosen.sum())]
    return np.sort(np.concatenate([np.flatnonzero(chosen), extra]))


@dataclass
class _Frame:
    t: float
    cut: bool
    size: tuple[int, int]  # picture width, height
    picture: np.ndarray | None  # kept until compared with a frame `still_gap` later
    views: dict[str, tuple[np.ndarray, np.ndarray]]  # view -> (points, descriptors)
    still: list[np.ndarray]  # still-pixel maps against frames `still_gap` before and after


QUERY_VIEWS = ("mirrored", "left", "right", "top", "bottom")


class KeypointCollector:
    """Picks keyframes among the frames `fingerprint_video` samples and extracts their keypoints.

    Stillness is judged against the sampled frames about `still_gap` seconds
    before and after each keyframe, as they stream past: only a few seconds of
    pictures are ever held, whatever the video's length.
    """

    def __init__(self, params: KeypointParams | None = None, query: bool = False):
        self.params = params or KeypointParams()
        self.query = query
        self.interval = self.params.query_interval if query else self.params.interval
        self.extract = OrbExtractor(self.params)
        self.frames: list[_Frame] = []
        self.pending: list[_Frame] = []  # keyframes still waiting for a frame `still_gap` later
        self.recent: list[tuple[float, np.ndarray]] = []  # sampled frames of the last few seconds
        self.last = self.last_parts = -1e9

    def feed(self, t: float, picture: np.ndarray, cut: bool,
             windows: Sequence[tuple[int, int, int, int]] = ()) -> None:
        p = self.params
        for f in [f for f in self.pending if t - f.t >= p.still_gap]:
            if t - f.t <= p.still_reach:
                f.still.append(_still_map(f.picture, picture, p))
            self._settle(f)
            self.pending.remove(f)
        self.recent = [(rt, rp) for rt, rp in self.recent if t - rt <= p.still_reach] + [(t, picture)]
        if not (cut or t - self.last >= self.interval - 1e-6):
            return
        if min(picture.shape) < p.min_side or float(picture.std()) < p.min_std:
            return  # flat: the next frame is due instead
        self.last = t
        before = [rp for rt, rp in self.recent if t - rt >= p.still_gap]
        still = [_still_map(picture, before[-1], p)] if before else []
        moving = _moving_mask(still[0], p) if still else None
        views = {"": _with_windows(self.extract, picture, moving, windows)}
        if self.query:
            parts = t - self.last_parts >= p.parts_interval - 1e-6
            views.update(_query_views(self.extract, picture, parts, moving, windows))
            self.last_parts = t if parts else self.last_parts
        frame = _Frame(float(t), bool(cut), (picture.shape[1], picture.shape[0]), picture, views, still)
        self.frames.append(frame)
        self.pending.append(frame)
        if len(self.frames) > p.max_keyframes:
            self.frames = [f for k, f in enumerate(self.frames) if k % 2 == 0]
            self.pending = [f for f in self.pending if any(f is g for g in self.frames)]
            self.interval *= 2

    def finish(self) -> Keyframes:
        for f in self.pending:  # the last keyframes: judged on the frames before them only
            self._settle(f)
        if not self.frames:
            return Keyframes.empty()
        base = self._assemble("")
        if self.query:
            base.views = {name: self._assemble(name) for name in QUERY_VIEWS}
        self.frames, self.pending, self.recent = [], [], []
        return base

    def _settle(self, f: _Frame) -> None:
        """Drop a keyframe's still keypoints once the frames around it are seen; its pictures are let go
        (a long video holds only the keypoints it keeps)."""
        for name, (pts, desc) in f.views.items():
            moving = self._moving(f, pts, name == "mirrored")
            f.views[name] = (pts[moving], desc[moving])
        f.picture, f.still = None, []

    def _assemble(self, view: str) -> Keyframes:
        kept_points, kept_desc, counts = [], [], []
        for f in self.frames:
            pts, desc = f.views.get(view, _NONE)
            kept_points.append(pts)
            kept_desc.append(desc)
            counts.append(len(pts))
        return Keyframes(np.array([f.t for f in self.frames], np.float32),
                         np.array([f.size for f in self.frames], np.uint16).reshape(-1, 2),
                         np.array([f.cut for f in self.frames], bool),
                         np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
                         np.concatenate(kept_points).astype(np.float32).reshape(-1, 2),
                         np.concatenate(kept_desc).astype(np.uint8).reshape(-1, DESCRIPTOR_BYTES))

    def _moving(self, f: _Frame, pts: np.ndarray, mirrored: bool) -> np.ndarray:
        """Which keypoints sit on content that changes against the frames a second or so before and after."""
        keep = np.ones(len(pts), bool)
        if not len(pts):
            return keep
        for still in f.still:
            h, w = still.shape
            x = np.clip(pts[:, 0].astype(np.int64), 0, w - 1)
            if mirrored:
                x = w - 1 - x
            y = np.clip(pts[:, 1].astype(np.int64), 0, h - 1)
            keep &= still[y, x] < self.params.still_share
        return keep


def _moving_mask(still: np.ndarray, p: KeypointParams) -> np.ndarray | None:
    """Where a picture changes against a frame about a second before (uint8 255), or None when too little does
    (the keypoints of a still picture are dropped all the same: an empty mask would only cost the search)."""
    moving = still < p.still_share
    if moving.mean() < p.min_moving:
        return None
    return moving.astype(np.uint8) * 255


def _still_map(a: np.ndarray, b: np.ndarray, p: KeypointParams) -> np.ndarray:
    """Per pixel, the share of its neighbourhood that is the same in `a` and `b` (a float32 map of `a`'s size).

    Pictures of different sizes (the active area changed) are not compared: nothing counts as still.
    """
    if a.shape != b.shape:
        return np.zeros(a.shape, np.float32)
    sa = cv2.GaussianBlur(a, (0, 0), 1.0).astype(np.int16)
    sb = cv2.GaussianBlur(b, (0, 0), 1.0).astype(np.int16)
    same = (np.abs(sa - sb) < p.still_level).astype(np.float32)
    return cv2.blur(same, (p.still_patch, p.still_patch))


_NONE = (np.zeros((0, 2), np.float32), np.zeros((0, DESCRIPTOR_BYTES), np.uint8))


def _enlarged(extract: OrbExtractor, picture: np.ndarray, moving: np.ndarray | None,
              rect: tuple[int, int, int, int], zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints of the part `rect` (x, y, width, height) of `picture` enlarged `zoom` times, in the picture's
    coordinates: the part gets a keypoint budget of its own, at about the scale a full-size copy shows it."""
    x, y, pw, ph = rect
    size = (int(round(pw * zoom)), int(round(ph * zoom)))
    part = cv2.resize(picture[y:y + ph, x:x + pw], size, interpolation=cv2.INTER_LINEAR)
    part_moving = None if moving is None else cv2.resize(moving[y:y + ph, x:x + pw], size,
                                                         interpolation=cv2.INTER_NEAREST)
    pts, desc = extract(part, part_moving)
    return pts / np.float32(zoom) + np.array([x, y], np.float32), desc


def _with_windows(extract: OrbExtractor, picture: np.ndarray, moving: np.ndarray | None,
                  windows: Sequence[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The picture's keypoints, and those of each window in it enlarged (in whole-picture coordinates).

    Footage in a picture-in-picture window or a screen recording's player is a fraction of the picture, and
    the picture's keypoint budget goes mostly to what surrounds it (moving footage too); a copy of the
    footage shows it at full size.  Enlarged to about the picture's size, the window gets a budget of its
    own at about that scale: stored posts get what a query's enlarged halves give queries.
    """
    p = extract.params
    pts, desc = extract(picture, moving)
    h, w = picture.shape
    parts_pts, parts_desc = [pts], [desc]
    for x, y, ww, wh in windows:
        x, y = max(0, int(x)), max(0, int(y))
        ww, wh = min(int(ww), w - x), min(int(wh), h - y)
        zoom = min(p.window_zoom, max(w, h) / max(1, ww, wh))
        if zoom < p.min_window_zoom or min(ww, wh) < p.min_side // 2:
            continue
        if moving is not None and not moving[y:y + wh, x:x + ww].any():
            continue  # nothing moves in it: its keypoints would be dropped as still
        wp, wd = _enlarged(extract, picture, moving, (x, y, ww, wh), zoom)
        parts_pts.append(wp)
        parts_desc.append(wd)
    if len(parts_pts) == 1:
        return pts, desc
    return np.concatenate(parts_pts), np.concatenate(parts_desc)


def _query_views(extract: OrbExtractor, picture: np.ndarray, parts: bool,
                 moving: np.ndarray | None = None, windows: Sequence[tuple[int, int, int, int]] = ()
                 ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The mirrored picture (with its windows' keypoints, see `_with_windows`), and (with `parts`) its halves
    enlarged twice (in whole-picture coordinates).

    A window or one side of a split screen shows the footage at a fraction of
    its stored size and gets a fraction of the keypoint budget; enlarged, a
    half gets a budget of its own at about the stored scale.
    """
    h, w = picture.shape
    flipped = None if moving is None else np.ascontiguousarray(moving[:, ::-1])
    mirrored_windows = [(w - x - ww, y, ww, wh) for x, y, ww, wh in windows]  # the windows, mirrored too
    out = {"mirrored": _with_windows(extract, np.ascontiguousarray(picture[:, ::-1]), flipped, mirrored_windows)}
    if not parts:
        return out
    halves = {"left": (0, 0, w * 3 // 5, h), "right": (w * 2 // 5, 0, w - w * 2 // 5, h),
             "top": (0, 0, w, h * 3 // 5), "bottom": (0, h * 2 // 5, w, h - h * 2 // 5)}
    for name, rect in halves.items():
        out[name] = _enlarged(extract, picture, moving, rect, 2.0)
    return out
