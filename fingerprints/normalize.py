"""Find the active picture inside re-upload framing.

Re-uploads put the same footage inside black letterbox or pillarbox bars, or
over a blurred, enlarged copy of itself (the 9:16 "blur pad" reframe).  Hashing
the whole frame would hash the framing; we hash the active area instead.

The area is estimated from a handful of frames at once, because one frame can
be dark or flat where the footage is, while over a few seconds the footage
moves and has edges and the framing does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from .model import CropBox

# A blurred pad keeps less than this share of the footage's edge energy.
PAD_ENERGY_RATIO = 0.3
# Never crop to less than this share of a side: what is left would be a detail, not the footage.
MIN_ACTIVE_SHARE = 0.2
# Footage laid over a blurred pad starts with a step: just inside its edge the edge energy is at least
# this many times what it is just outside (the suite's 9:16 reframes: 5.8-400).  Footage that merely
# fades into smooth sides (sky, a gradient, a static scene's dark corners) ramps up: 1.3-1.7.
PAD_STEP_RATIO = 3.0
_STEP_SKIP, _STEP_WIDTH = 2, 4  # columns next to the edge left out (the step itself), and compared


def _edge_trim(is_border: np.ndarray) -> tuple[int, int]:
    """First and one-past-last index not covered by a border run from either edge."""
    n = len(is_border)
    start = 0
    while start < n and is_border[start]:
        start += 1
    end = n
    while end > start and is_border[end - 1]:
        end -= 1
    return start, end


def _black_bar_box(stack: np.ndarray, threshold: int) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1) inside black bars that stay black in every frame."""
    row_max = stack.mean(axis=2).max(axis=0)  # brightest mean of each row over time
    col_max = stack.mean(axis=1).max(axis=0)
    y0, y1 = _edge_trim(row_max <= threshold)
    x0, x1 = _edge_trim(col_max <= threshold)
    return y0, y1, x0, x1


def _longest_run(mask: np.ndarray, max_gap: int) -> tuple[int, int]:
    """Longest run of True allowing gaps of up to `max_gap` False values."""
    best = (0, 0)
    start = None
    last_true = -1
    for i, value in enumerate(mask):
        if value:
            if start is None or i - last_true - 1 > max_gap:
                start = i
            last_true = i
            if last_true + 1 - start > best[1] - best[0]:
                best = (start, last_true + 1)
    return best


def _sharp_band(energy: np.ndarray) -> tuple[int, int] | None:
    """The band of rows (or columns) whose edge energy is footage, not blur.

    Returns None when there is no clear blurred pad on this axis.
    """
    n = len(energy)
    if n < 10:
        return None
    smooth = np.convolve(energy, np.ones(3) / 3, mode="same")
    reference = float(np.percentile(smooth, 90))
    if reference <= 1e-6:
        return None
    start, end = _longest_run(smooth > PAD_ENERGY_RATIO * reference, max_gap=max(1, n // 40))
    if end - start >= n - 2 or end - start < MIN_ACTIVE_SHARE * n:
        return None
    inside = float(smooth[start:end].mean())
    outside = np.concatenate([smooth[:start], smooth[end:]])
    # the median: a title band or lettering drawn on the pad is sharp, but only a few rows of it
    if outside.size == 0 or float(np.median(outside)) > PAD_ENERGY_RATIO * inside:
        return None
    if not (_steps_up(smooth, start, inward=True) and _steps_up(smooth, end, inward=False)):
        return None
    return start, end


def _steps_up(smooth: np.ndarray, edge: int, inward: bool) -> bool:
    """Whether edge energy jumps at `edge` (the first column inside, or one past the last) rather than ramps.

    A side with fewer pad columns than the step needs to be seen is not judged.
    """
    n = len(smooth)
    pad = edge if inward else n - edge
    if pad <= _STEP_SKIP:
        return True
    if inward:
        outside = smooth[max(0, edge - _STEP_SKIP - _STEP_WIDTH):edge - _STEP_SKIP]
        inside = smooth[edge + _STEP_SKIP:edge + _STEP_SKIP + _STEP_WIDTH]
    else:
        outside = smooth[edge + _STEP_SKIP:edge + _STEP_SKIP + _STEP_WIDTH]
        inside = smooth[max(0, edge - _STEP_SKIP - _STEP_WIDTH):edge - _STEP_SKIP]
    return float(inside.mean()) >= PAD_STEP_RATIO * max(float(outside.mean()), 1e-6)


def detect_active_area(frames: Sequence[np.ndarray], border_threshold: int = 24) -> CropBox:
    """Estimate the active picture of greyscale frames of one shot or chunk."""
    stack = np.stack(frames).astype(np.float32)
    _, height, width = stack.shape
    full = CropBox(0, 0, width, height, width, height)

    y0, y1, x0, x1 = _black_bar_box(stack, border_threshold)
    if y1 - y0 < MIN_ACTIVE_SHARE * height or x1 - x0 < MIN_ACTIVE_SHARE * width:
        return full  # all dark: nothing reliable to crop to
    inner = stack[:, y0:y1, x0:x1]

    # Edge energy per pixel, averaged over time, then per row and column.
    energy = np.zeros(inner.shape[1:], dtype=np.float32)
    for frame in inner:
        energy += np.abs(cv2.Laplacian(frame, cv2.CV_32F, ksize=3))
    energy /= len(inner)
    rows = _sharp_band(energy.mean(axis=1))
    if rows is not None:
        y0, y1 = y0 + rows[0], y0 + rows[1]
        energy = energy[rows[0]:rows[1], :]
    cols = _sharp_band(energy.mean(axis=0))
    if cols is not None:
        x0, x1 = x0 + cols[0], x0 + cols[1]
    return CropBox(x0, y0, x1 - x0, y1 - y0, width, height)


def crop(frame: np.ndarray, box: CropBox) -> np.ndarray:
    return frame[box.y:box.y + box.height, box.x:box.x + box.width]


# Template detection: pixels that do not change while the footage moves.
STATIC_STD = 2.0  # grey levels of temporal standard deviation below which a pixel is static
MOVING_STD = 6.0  # median temporal deviation of the footage for the test to mean anything
MIN_OVERLAY_SHARE = 0.02  # still share of the picture below which nothing is masked
MAX_OVERLAY_SHARE = 0.6  # ... and above which the stillness is the footage's own
_TEMPLATE_GRID = 64  # frames are compared at this size


def static_overlay_mask(frames: Sequence[np.ndarray], previous: np.ndarray | None = None) -> np.ndarray | None:
    """Cells (of a _TEMPLATE_GRID square grid) where an overlay stands still over moving footage, else None.

    An overlay (banner, badge, caption box) is the same on every post of an
    account, so a hash of the frame would partly hash the account.  It shows
    as cells that stay still while the footage moves.  None when nothing is
    still, or when most of the picture is (a static camera, a slide: then the
    stillness is the footage).  `previous` is the last shot's overlay: while
    its cells stay still it is kept through slow shots, where there is too
    little movement to find it afresh.
    """
    if len(frames) < 4:
        return None
    small = np.stack([cv2.resize(f, (_TEMPLATE_GRID, _TEMPLATE_GRID), interpolation=cv2.INTER_AREA)
                      for f in frames]).astype(np.float32)
    std = small.std(axis=0)
    still = std < STATIC_STD
    if float(np.median(std)) >= MOVING_STD:
        share = float(still.mean())
        if MIN_OVERLAY_SHARE <= share <= MAX_OVERLAY_SHARE:
            return still
    if previous is not None and float(still[previous].mean()) >= 0.9 and float(still.mean()) < 0.9:
        return previous
    return None


# A still camera: the moving parts of the picture are what tells one moment from another.
STILL_LEVEL = 12  # grey levels from the background beyond which a pixel has moved
MAX_MOVING_SHARE = 0.1  # a shot whose frames typically move more than this share of pixels is not still
MIN_STILL_FRAMES = 8  # sampled frames needed for a background (2 s at 4 per second)
MOTION_LEVEL = 25  # a frame whose blurred difference from the background stays below this has no moving part
_MOTION_BLUR = 1.5  # Gaussian sigma (analysis pixels) that smooths sensor noise out of the difference


def still_background(frames: Sequence[np.ndarray]) -> np.ndarray | None:
    """The picture behind what moves, when the camera is still; None when it moves or too few frames are given.

    A still camera (CCTV, a street cam, a tripod) makes every frame of one
    take look alike, and alike to any other take of the same place: the
    whole-picture hash cannot tell the moments apart, and captions drawn over
    the footage do not move either.  The per-pixel median over the shot is
    the scene without its moving parts (a part that moves covers a pixel in
    fewer than half of the frames).
    """
    if len(frames) < MIN_STILL_FRAMES:
        return None
    stack = np.stack(frames)
    background = np.median(stack, axis=0).astype(np.uint8)
    moving = [float((cv2.absdiff(f, background) > STILL_LEVEL).mean()) for f in frames]
    if float(np.median(moving)) > MAX_MOVING_SHARE:
        return None
    return background


def moving_parts(frame: np.ndarray, background: np.ndarray) -> np.ndarray | None:
    """How far each pixel is from the still background (blurred), or None when nothing moves in this frame."""
    difference = cv2.GaussianBlur(cv2.absdiff(frame, background), (0, 0), _MOTION_BLUR)
    if int(difference.max()) < MOTION_LEVEL:
        return None
    return difference


def mask_at(cells: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A cell mask at frame size."""
    return cv2.resize(cells.astype(np.uint8), (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST).astype(bool)


def fill_masked(frame: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The frame with masked pixels set to the mean of the others (neutral for a DCT hash)."""
    out = frame.copy()
    out[mask] = np.uint8(round(float(frame[~mask].mean())))
    return out


def centre(frame: np.ndarray, share: float) -> np.ndarray:
    """The central `share` x `share` of a frame."""
    h, w = frame.shape[:2]
    dy, dx = int(round(h * (1 - share) / 2)), int(round(w * (1 - share) / 2))
    return frame[dy:h - dy, dx:w - dx]


# Picture-in-picture: a window of footage inside other footage.
EDGE_STRENGTH = 12.0  # grey-level step across a window's border, in the median over time
MIN_WINDOW_SHARE = 0.15  # a window's sides are at least this share of the frame's
MIN_WINDOW_AREA = 0.06  # ... and its area this share of the frame's
MAX_LINE_SHARE = 0.97  # lines longer than this span the frame (bars, banners), not a window


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longest run of True in each row of a 2-D mask: (lengths, starts)."""
    lengths = np.zeros(mask.shape[0], dtype=np.int64)
    starts = np.zeros(mask.shape[0], dtype=np.int64)
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = mask
    steps = np.diff(padded, axis=1)
    for r in np.flatnonzero(mask.any(axis=1)):
        begin = np.flatnonzero(steps[r] == 1)
        end = np.flatnonzero(steps[r] == -1)
        k = int(np.argmax(end - begin))
        lengths[r], starts[r] = end[k] - begin[k], begin[k]
    return lengths, starts


# One video inside another, told apart by time: the pixels of one video change together, so neighbouring
# pixels' changes over a shot are correlated; across the border of a window, a split screen or a player, the two
# sides belong to different videos and their changes are unrelated (no edge needed: the sides may be alike).
CHANGING_STD = 3.0  # grey levels of change over the shot (standard deviation) that make a pixel moving
LINKED = 0.6  # correlation of two neighbours' changes that ties them to one video
UNLINKED = 0.3  # ... below which, between two moving pixels, a border runs
MIN_TIME_FRAMES = 8  # frames needed for the correlations to mean anything
MIN_TIME_SIDE = 16  # pixels a frame's sides need for borders between regions to be told (a thin video has none)
BORDER_CONTRAST = 0.3  # a border's neighbours two pixels away on either side are this much more correlated
MAX_BORDER_SHARE = 0.02  # of all neighbour pairs, those on borders: more is a texture of cells, not a composite
SPLIT_SPAN = 0.8  # a split's border runs across at least this share of the moving pixels beside it
MIN_SPLIT_SHARE = 0.2  # each side of a split is at least this share of the frame
MIN_REGION_FILL = 0.85  # a region changing on its own must fill its bounding box this much (a rectangle) ...
MIN_REGION_SIDE = 0.8  # ... and reach each side of it along this share of the side
MAX_REGION_AREA = 0.9  # a region this big is the footage itself


_Changes = tuple[np.ndarray, np.ndarray, np.ndarray]


def _changes(frames: Sequence[np.ndarray]) -> _Changes | None:
    """(moving pixels, correlation of vertical neighbours' changes (h-1, w), of horizontal ones (h, w-1))."""
    if len(frames) < MIN_TIME_FRAMES or min(frames[0].shape[:2]) < MIN_TIME_SIDE:
        return None
    x = np.stack(frames).astype(np.float32)
    x -= x.mean(axis=0)
    energy = np.einsum("thw,thw->hw", x, x)
    moving = energy > CHANGING_STD ** 2 * len(frames)
    down = np.einsum("thw,thw->hw", x[:, :-1], x[:, 1:]) / np.sqrt(np.maximum(energy[:-1] * energy[1:], 1e-6))
    right = np.einsum("thw,thw->hw", x[:, :, :-1], x[:, :, 1:]) / np.sqrt(
        np.maximum(energy[:, :-1] * energy[:, 1:], 1e-6))
    # a link holds where its neighbours along the border agree: one chance correlation neither joins nor cuts
    return moving, cv2.blur(down, (3, 1)), cv2.blur(right, (1, 3))


def _borders(moving: np.ndarray, links: np.ndarray) -> np.ndarray:
    """Where a border runs between rows y and y+1 (`links`: correlation of vertical neighbours, (h-1, w)): both
    pixels move, their changes are unrelated, and two rows away on either side neighbours change together more.
    Footage whose pixels never change together (noise, cellular patterns) has no borders, only unrelated pixels."""
    cut = (links < UNLINKED) & moving[:-1] & moving[1:]
    linked = np.zeros_like(cut)
    linked[2:-2] = np.minimum(links[:-4], links[4:]) > links[2:-2] + BORDER_CONTRAST
    borders = cut & linked
    # a window's or a split's borders are a few lines; a grid of them is texture (blocky cells, tiles)
    return borders if borders.mean() <= MAX_BORDER_SHARE else np.zeros_like(borders)


def detect_split(frames: Sequence[np.ndarray], changes: _Changes | None = None) -> tuple[CropBox, CropBox] | None:
    """The two sides of a split screen (side by side or stacked), larger first, or None.

    The border runs straight across the frame where, on most of its length,
    the pixels above and below (or left and right) both move and their
    changes are unrelated, while everywhere else neighbours change together.
    """
    changes = changes or _changes(frames)
    if changes is None:
        return None
    moving, down, right = changes
    height, width = moving.shape
    best: tuple[float, CropBox, CropBox] | None = None
    for links, both, size in ((down, moving[:-1] & moving[1:], height),
                              (right.T, (moving[:, :-1] & moving[:, 1:]).T, width)):
        counted = both.sum(axis=1)
        cut_share = np.where(counted > 0, ((links < UNLINKED) & both).sum(axis=1) / np.maximum(counted, 1), 0.0)
        typical = np.median(links, axis=1)  # of each row of links, moving or not
        span = counted / both.shape[1]
        for k in np.flatnonzero((cut_share >= SPLIT_SPAN) & (span >= 0.5)):
            cut = int(k) + 1
            if not MIN_SPLIT_SHARE * size <= cut <= (1 - MIN_SPLIT_SHARE) * size or not 2 <= k < len(typical) - 2:
                continue
            if min(typical[k - 2], typical[k + 2]) < typical[k] + BORDER_CONTRAST:
                continue  # unrelated beside it too: texture, not a border
            if np.count_nonzero(cut_share >= SPLIT_SPAN / 2) > 3:
                continue  # many such lines: cells or tiles, not two videos
            if best is not None and cut_share[k] <= best[0]:
                continue
            if size == height:
                a, b = CropBox(0, 0, width, cut, width, height), CropBox(0, cut, width, height - cut, width, height)
            else:
                a, b = CropBox(0, 0, cut, height, width, height), CropBox(cut, 0, width - cut, height, width, height)
            best = (float(cut_share[k]), *(sorted((a, b), key=lambda box: -box.width * box.height)))
    return None if best is None else (best[1], best[2])


def detect_changing_region(frames: Sequence[np.ndarray], changes: _Changes | None = None) -> CropBox | None:
    """A rectangle whose pixels change together, apart from everything around it, or None.

    What a screen recording shows: the player's picture changes while the
    interface around it stands still (or moves on its own: a cursor, a
    progress marker).  Neighbouring moving pixels whose changes are
    correlated are joined into regions; the largest that fills a rectangle
    (not the whole frame) is the window.
    """
    changes = changes or _changes(frames)
    if changes is None:
        return None
    moving, down, right = changes
    height, width = moving.shape
    grid = np.zeros((2 * height - 1, 2 * width - 1), dtype=np.uint8)  # pixels on even cells, links between them
    grid[::2, ::2] = moving
    grid[1::2, ::2] = (down > LINKED) & moving[:-1] & moving[1:]
    grid[::2, 1::2] = (right > LINKED) & moving[:, :-1] & moving[:, 1:]
    count, labels, stats, _ = cv2.connectedComponentsWithStats(grid, connectivity=4)
    best: CropBox | None = None
    for k in range(1, count):
        x, y, w, h = (int(v) for v in stats[k, :4])
        x0, y0, x1, y1 = x // 2, y // 2, (x + w + 1) // 2, (y + h + 1) // 2
        bw, bh = x1 - x0, y1 - y0
        if not MIN_WINDOW_AREA * width * height <= bw * bh <= MAX_REGION_AREA * width * height:
            continue
        if bw < MIN_WINDOW_SHARE * width or bh < MIN_WINDOW_SHARE * height:
            continue
        region = labels[2 * y0:2 * y1 - 1:2, 2 * x0:2 * x1 - 1:2] == k
        if region.mean() < MIN_REGION_FILL:
            continue
        reach = 2  # pixels in from each side
        sides = (region[:reach].any(axis=0).mean(), region[-reach:].any(axis=0).mean(),
                 region[:, :reach].any(axis=1).mean(), region[:, -reach:].any(axis=1).mean())
        if min(sides) < MIN_REGION_SIDE:
            continue
        if (x0 <= 2) + (y0 <= 2) + (x1 >= width - 2) + (y1 >= height - 2) >= 3:
            continue  # the picture less a band along one edge: footage under a banner (masked as an overlay)
        if best is None or bw * bh > best.width * best.height:
            best = CropBox(x0, y0, bw, bh, width, height)
    return best


def find_window(frames: Sequence[np.ndarray]) -> tuple[CropBox | None, CropBox | None]:
    """(window, other side) of a composite frame: the two sides of a split screen, larger first; or a
    picture-in-picture window (by its borders) or a region that changes on its own (a screen recording's
    player), with no other side (what is around it is the picture less the window); or (None, None)."""
    changes = _changes(frames)
    split = detect_split(frames, changes)
    if split is not None:
        return split
    return detect_inner_window(frames, changes) or detect_changing_region(frames, changes), None


def detect_inner_window(frames: Sequence[np.ndarray], changes: _Changes | None = None) -> CropBox | None:
    """A rectangle of footage shown inside other footage (picture-in-picture), or None.

    The border of such a window is an edge that stays put while the
    footage on both sides of it moves: in the median over time of the
    gradient, only borders like it survive.  Where the two sides are too
    alike for an edge, the border still shows in time: the changes on its
    two sides are unrelated (`_changes`).  Two horizontal borders of the
    much the same extent, with vertical borders between them, make a window.
    """
    if len(frames) < 4:
        return None
    stack = np.stack(frames[::max(1, len(frames) // 8)]).astype(np.float32)  # 8 frames are plenty
    _, height, width = stack.shape
    across_rows = np.median(np.abs(np.diff(stack, axis=1)), axis=0) > EDGE_STRENGTH  # horizontal borders
    across_cols = np.median(np.abs(np.diff(stack, axis=2)), axis=0) > EDGE_STRENGTH  # vertical borders
    changes = changes or _changes(frames)
    if changes is not None:
        moving, down, right = changes
        across_rows |= _borders(moving, down)
        across_cols |= _borders(moving.T, right.T).T
    row_len, row_start = _runs(across_rows)
    col_len, col_start = _runs(across_cols.T)
    lines = [r for r in np.flatnonzero((row_len >= MIN_WINDOW_SHARE * width) & (row_len <= MAX_LINE_SHARE * width))]
    best: tuple[int, CropBox] | None = None
    for i, top in enumerate(lines):
        for bottom in lines[i + 1:]:
            if bottom - top < MIN_WINDOW_SHARE * height or bottom - top > MAX_LINE_SHARE * height:
                continue
            x0 = int(max(row_start[top], row_start[bottom]))
            x1 = int(min(row_start[top] + row_len[top], row_start[bottom] + row_len[bottom]))
            if x1 - x0 < 0.6 * max(row_len[top], row_len[bottom]) or x1 - x0 < MIN_WINDOW_SHARE * width:
                continue  # not two borders of one rectangle
            side = int(bottom - top)
            # vertical borders along a good part of the way between the two
            upright = np.flatnonzero((col_len >= 0.3 * side) & (col_start >= top - 3)
                                     & (col_start + col_len <= bottom + 4))
            near = upright[(upright >= x0 - side) & (upright <= x1 + side)]
            if not len(near):
                continue
            if near.max() - near.min() >= MIN_WINDOW_SHARE * width:
                x0, x1 = int(near.min()), int(near.max())  # horizontal borders can fade where both sides agree
            area = (x1 - x0) * side
            if x1 - x0 > MAX_LINE_SHARE * width or area < MIN_WINDOW_AREA * width * height:
                continue
            if best is None or area > best[0]:
                best = (area, CropBox(x0 + 1, int(top) + 1, x1 - x0 - 1, side - 1, width, height))
    return None if best is None else best[1]
