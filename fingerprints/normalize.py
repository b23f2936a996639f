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
    if outside.size == 0 or float(outside.mean()) > PAD_ENERGY_RATIO * inside:
        return None
    return start, end


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


def static_overlay_mask(frames: Sequence[np.ndarray]) -> np.ndarray | None:
    """Where an overlay (banner, badge, caption box) stands still over moving footage, else None.

    Such an overlay is the same on every post of an account, so a hash of
    the frame would partly hash the account.  It shows as cells that stay
    still while the footage moves.  Returns a boolean mask at frame size, or
    None when nothing is still, or when most of the picture is (a static
    camera, a slide: then the stillness is the footage).
    """
    if len(frames) < 4:
        return None
    height, width = frames[0].shape[:2]
    small = np.stack([cv2.resize(f, (_TEMPLATE_GRID, _TEMPLATE_GRID), interpolation=cv2.INTER_AREA)
                      for f in frames]).astype(np.float32)
    std = small.std(axis=0)
    if float(np.median(std)) < MOVING_STD:
        return None
    still = std < STATIC_STD
    share = float(still.mean())
    if share < MIN_OVERLAY_SHARE or share > MAX_OVERLAY_SHARE:
        return None
    return cv2.resize(still.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


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
