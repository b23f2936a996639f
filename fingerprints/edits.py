"""The edits a match shows that frame hashes cannot: colour, pads, overlays, and where a crop or window sits.

Frame hashes are made from grey pictures with pads cut off and still
overlays masked, so a grey or sepia copy, the colour of a pad, a caption
band or a logo, and which part of the picture a crop kept leave no trace in
them.  Here a few matched frame pairs, cut in colour at a small size (rows
of RGB pixels, any sizes), are compared directly:

- colour: saturation, hue spread and channel balance say grey, sepia, a
  saturation or tint change; luma spread and level say contrast and
  brightness; corners against centre say vignette;
- pads: the frame outside the active picture (the framing estimate), flat
  (a colour, named) or without detail (blurred);
- overlays: a region (top or bottom band, a corner) that stays the same
  across the pairs on one side while the other side's footage moves there;
- geometry: the smaller picture found inside the larger one over a range of
  scales (normalised cross-correlation): which part of the stored picture a
  crop kept, or where and how large a window with the stored footage is, and
  whether what surrounds that window moves (picture-in-picture) or not (a
  screen recording).

Everything is per pair and then agreed over the pairs, so one odd frame
says nothing.  Arrays in, a dataclass out; no files, no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

GREY_SATURATION = 14.0  # mean saturation (0-255) at or below which a picture has no colour
COLOURED = 30.0  # ... and above which the other side clearly has some
GREY_SHARE = 0.15  # a picture keeping less than this share of the other's saturation is grey too (chroma noise)
SEPIA_HUE_SPREAD = 10.0  # circular spread of hue (degrees) below which one hue tints everything
SATURATION_RATIO = 1.35  # mean saturation this many times higher (or lower) is a saturation edit
CONTRAST_RATIO = 1.25  # luma spread this many times wider (or narrower) is a contrast edit
BRIGHTNESS_STEP = 18.0  # grey levels of mean luma shift that are a brightness or gamma edit
TINT_RATIO = 1.15  # a channel's share of the picture this many times the other side's is a tint
VIGNETTE_RATIO = 0.8  # corner-to-centre luma this share of the other side's is a vignette
PAD_FLAT = 12.0  # pixel spread of a pad (grey levels) at or below which it is one colour
STATIC_SHARE = 0.35  # a part changing less than this share of the other side's change over the pairs is still
OWNER_RATIO = 0.7  # ... else the side changing less than this share of the other's there carries an overlay
MIN_CHANGE = 6.0  # grey levels of change over the pairs below which nothing counts as moving
OVERLAY_WIDTH = 96  # pictures are compared for overlays at this width (pixels)
OVERLAY_DIFFERENCE = 1.0  # standardised difference at every pair that marks a part of one side only ...
OVERLAY_MIN_AREA = 0.004  # ... over at least this share of the picture ...
OVERLAY_MAX_AREA = 0.45  # ... and at most this one (more is another framing, not an overlay)
BAND_WIDTH = 0.6  # overlays spanning this much of the width ...
BAND_DEPTH = 0.3  # ... in the top or bottom this much of the height are a caption or banner band
MAX_OVERLAYS = 3  # overlays named per side, the largest first
MATCH_SCORE = 0.6  # normalised cross-correlation at which the smaller picture is found in the larger
KEPT_BELOW = 0.92  # a crop keeping less than this of the width or height is named
WINDOW_BELOW = 0.8  # a window filling less than this of the frame's area is named
MIN_SIDE = 24  # frames smaller than this (pixels) are not compared

COLOUR_NAMES = [((0, 0, 0), "black"), ((255, 255, 255), "white"), ((128, 128, 128), "grey"),
                ((200, 30, 30), "red"), ((30, 160, 40), "green"), ((30, 60, 200), "blue"),
                ((230, 200, 40), "yellow"), ((240, 130, 20), "orange"), ((150, 40, 160), "purple"),
                ((240, 110, 170), "pink"), ((20, 30, 70), "navy"), ((110, 70, 40), "brown")]


@dataclass(frozen=True)
class PictureEdits:
    """What the colour frames of a match show, in words (empty when nothing could be told)."""

    colour: list[str] = field(default_factory=list)  # e.g. "grey (colour removed)", "sepia", "more contrast (x1.4)"
    pad: str | None = None  # the colour of the query's pads: "black", "white", "blurred", a colour name
    overlays: list[str] = field(default_factory=list)  # overlays on the query only, e.g. "a caption or banner ..."
    stored_overlays: list[str] = field(default_factory=list)  # ... on the stored video only
    kept: str | None = None  # the part of the stored picture a crop kept, e.g. "left 62% kept"
    window: str | None = None  # where the stored footage sits in the query, e.g. "36% of the frame, right"
    surround: str | None = None  # what is around that window: "other footage" or "a still screen"
    pairs: int = 0  # frame pairs compared

    def words(self) -> list[str]:
        out = list(self.colour)
        if self.pad:
            out.append(f"{self.pad} pads around the picture")
        if self.kept:
            out.append(f"cropped: {self.kept} of the stored picture")
        if self.window:
            where = ("a screen recording: the footage shown scaled down inside a still screen"
                     if self.surround == "a still screen" else "picture-in-picture over other footage")
            out.append(f"{where}, in a window filling {self.window}")
        out += self.overlays
        out += [f"the stored video has {r} that this copy lacks" for r in self.stored_overlays]
        return out


def _box(shape: tuple[int, ...], share: tuple[float, float]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of a centred active picture filling `share` (width, height) of a frame of `shape`."""
    h, w = shape[:2]
    bw, bh = max(1, int(round(w * min(1.0, share[0])))), max(1, int(round(h * min(1.0, share[1]))))
    return (w - bw) // 2, (h - bh) // 2, (w - bw) // 2 + bw, (h - bh) // 2 + bh


def _active(frame: np.ndarray, share: tuple[float, float]) -> np.ndarray:
    x0, y0, x1, y1 = _box(frame.shape, share)
    return frame[y0:y1, x0:x1]


def _middle(frame: np.ndarray) -> np.ndarray:
    """The picture without its outer bands, where captions and logos sit."""
    h, w = frame.shape[:2]
    return frame[int(0.3 * h): max(int(0.3 * h) + 1, int(0.7 * h)), int(0.3 * w): max(int(0.3 * w) + 1, int(0.7 * w))]


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _colour_stats(rgb: np.ndarray) -> dict[str, float]:
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    lit = hsv[..., 2] > 30
    sat = hsv[..., 1][lit].astype(np.float64) if lit.any() else np.zeros(1)
    hue = hsv[..., 0][lit].astype(np.float64) * 2.0 if lit.any() else np.zeros(1)  # degrees
    weight = sat + 1e-6
    angle = np.deg2rad(hue)
    c, s = np.average(np.cos(angle), weights=weight), np.average(np.sin(angle), weights=weight)
    spread = float(np.rad2deg(np.sqrt(max(0.0, -2.0 * np.log(max(1e-9, np.hypot(c, s)))))))
    luma = _luma(rgb)
    h, w = luma.shape
    corners = np.concatenate([luma[: h // 5, : w // 5].ravel(), luma[: h // 5, -(w // 5):].ravel(),
                              luma[-(h // 5):, : w // 5].ravel(), luma[-(h // 5):, -(w // 5):].ravel()])
    centre = luma[h // 3: 2 * h // 3, w // 3: 2 * w // 3]
    means = rgb.reshape(-1, 3).astype(np.float64).mean(axis=0) + 1.0
    return {"saturation": float(sat.mean()), "hue": float(np.rad2deg(np.arctan2(s, c)) % 360), "spread": spread,
            "luma": float(luma.mean()), "contrast": float(luma.std()) + 1e-6,
            "vignette": float((corners.mean() + 1.0) / (centre.mean() + 1.0)),
            "red": float(means[0] / means.sum()), "blue": float(means[2] / means.sum())}


def _toned(q: list[dict[str, float]], s: list[dict[str, float]]) -> str | None:
    """"grey (colour removed)" or "sepia" when most pairs with colour on the `s` side have none, or one tint,
    on the `q` side."""
    coloured = [(a, b) for a, b in zip(q, s) if b["saturation"] >= COLOURED]
    varied = [(a, b) for a, b in coloured if b["spread"] > 2 * SEPIA_HUE_SPREAD]
    if coloured and sum(a["saturation"] <= max(GREY_SATURATION, GREY_SHARE * b["saturation"])
                        for a, b in coloured) > len(coloured) / 2:
        return "grey (colour removed)"
    if varied and sum(a["spread"] <= SEPIA_HUE_SPREAD and 15 <= a["hue"] <= 60 and a["saturation"] > GREY_SATURATION
                      for a, _ in varied) > len(varied) / 2:
        return "sepia"
    return None


def colour_edits(query: Sequence[np.ndarray], stored: Sequence[np.ndarray]) -> list[str]:
    """Colour edits of the query against the stored video, from active pictures of matched pairs."""
    q = [_colour_stats(f) for f in query]
    s = [_colour_stats(f) for f in stored]
    if not q or not s:
        return []
    med = lambda stats, key: float(np.median([x[key] for x in stats]))  # noqa: E731
    # colour is judged on the pairs whose stored frame has some (a dark or grey moment tells nothing)
    coloured = [(a, b) for a, b in zip(q, s) if b["saturation"] >= COLOURED]
    out = []
    toned = _toned(q, s)
    if toned:
        out.append(toned)
    elif _toned(s, q):  # the other way round: the stored video lost the colour this copy has
        return [f"the stored video is {_toned(s, q).split(' (')[0]} (this copy has colour)"]
    elif coloured:
        ratio = float(np.median([(a["saturation"] + 1.0) / (b["saturation"] + 1.0) for a, b in coloured]))
        if ratio >= SATURATION_RATIO or ratio <= 1 / SATURATION_RATIO:
            out.append(f"{'more' if ratio > 1 else 'less'} saturated (×{ratio:.1f})")
        for channel, warm in (("red", "warmer"), ("blue", "cooler")):
            if float(np.median([a[channel] / b[channel] for a, b in coloured])) >= TINT_RATIO:
                out.append(f"colour tint ({warm})")
    contrast = med(q, "contrast") / med(s, "contrast")
    if contrast >= CONTRAST_RATIO or contrast <= 1 / CONTRAST_RATIO:
        out.append(f"{'more' if contrast > 1 else 'less'} contrast (×{contrast:.1f})")
    shift = med(q, "luma") - med(s, "luma")
    if abs(shift) >= BRIGHTNESS_STEP:
        out.append(f"{'brighter' if shift > 0 else 'darker'} (brightness or gamma, {shift:+.0f} grey levels)")
    if med(q, "vignette") <= VIGNETTE_RATIO * med(s, "vignette"):
        out.append("vignette (darker corners)")
    return out


def colour_name(rgb: Sequence[float]) -> str:
    r, g, b = (float(v) for v in rgb)
    return min(COLOUR_NAMES, key=lambda c: sum((a - x) ** 2 for a, x in zip(c[0], (r, g, b))))[1]


def pad_colour(frames: Sequence[np.ndarray], share: tuple[float, float]) -> str | None:
    """The colour of what surrounds the active picture ("blurred" when it has colours but little detail)."""
    pads, pictures = [], []
    for f in frames:
        x0, y0, x1, y1 = _box(f.shape, share)
        pictures.append(f[y0:y1, x0:x1])
        pads += [part for part in (f[:y0, :], f[y1:, :], f[:, :x0], f[:, x1:]) if min(part.shape[:2]) >= 2]
    if not pads:
        return None
    pixels = np.concatenate([part.reshape(-1, 3).astype(np.float32) for part in pads])
    if float(pixels.std(axis=0).mean()) <= PAD_FLAT:
        return colour_name(pixels.mean(axis=0))
    detail = lambda parts: float(np.mean([np.abs(np.diff(_luma(p), axis=1)).mean() for p in parts]))  # noqa: E731
    return "blurred" if detail(pads) < 0.5 * detail(pictures) else "patterned"


def _standard(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Grey levels brought to `size` (w, h), zero mean and unit spread: colour and contrast edits cancel out."""
    grey = cv2.resize(_luma(picture), size, interpolation=cv2.INTER_AREA)
    return (grey - grey.mean()) / (grey.std() + 1.0)


def _change(frames: Sequence[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Per-pixel spread over the frames (grey levels), every frame brought to `size` (w, h)."""
    return np.stack([cv2.resize(_luma(f), size, interpolation=cv2.INTER_AREA) for f in frames]).std(axis=0)


def _overlay_words(x: float, y: float, w: float, h: float, still: bool) -> str:
    if w >= BAND_WIDTH and (y + h <= BAND_DEPTH or y >= 1.0 - BAND_DEPTH):
        return f"a caption or banner band at the {'top' if y + h <= BAND_DEPTH else 'bottom'} ({h:.0%} of the height)"
    kind = "a still logo, badge or text" if still else "a logo, sticker or other overlay"
    where = _where(x, y, w, h)
    return f"{kind} in the {where}{' corner' if '-' in where else ''} ({w * h:.0%} of the picture)"


def _bands(boxes: list[tuple[float, float, float, float, bool]]) -> list[tuple[float, float, float, float, bool]]:
    """Boxes in the top or bottom BAND_DEPTH of the picture joined into one band when together they span
    BAND_WIDTH of its width (the words of a caption are separate parts)."""
    out = []
    for edge in ("top", "bottom"):
        group = [b for b in boxes if (b[1] + b[3] <= BAND_DEPTH if edge == "top" else b[1] >= 1.0 - BAND_DEPTH)]
        if not group:
            continue
        x0, y0 = min(b[0] for b in group), min(b[1] for b in group)
        x1, y1 = max(b[0] + b[2] for b in group), max(b[1] + b[3] for b in group)
        if x1 - x0 >= BAND_WIDTH:
            boxes = [b for b in boxes if b not in group]
            out.append((0.0, y0, 1.0, y1 - y0, any(b[4] for b in group)))
    return out + boxes


def overlays(query: Sequence[np.ndarray], stored: Sequence[np.ndarray]) -> tuple[list[str], list[str]]:
    """(on the query only, on the stored video only): parts of the picture where the two differ at every
    matched pair, as boxes in words.  Pictures are compared standardised (colour edits cancel out) at the
    query's size; the side on which the part stays still while the other's changes (or changes clearly less)
    carries the overlay (a caption, a logo); when that cannot be told, the words say so."""
    h, w = query[0].shape[:2]
    size = (OVERLAY_WIDTH, max(8, int(round(OVERLAY_WIDTH * h / max(1, w)))))
    diffs = np.stack([np.abs(_standard(q, size) - _standard(s, size)) for q, s in zip(query, stored)])
    differ = np.median(diffs, axis=0)
    mask = (differ > max(OVERLAY_DIFFERENCE, 3.0 * float(np.median(differ)))).astype(np.uint8)
    raw = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(
        cv2.morphologyEx(raw, cv2.MORPH_CLOSE, np.ones((5, 9), np.uint8)))
    q_change = _change(query, size) if len(query) >= 3 else None
    s_change = _change(stored, size) if len(stored) >= 3 else None
    area = size[0] * size[1]
    mine: list[tuple[float, float, float, float, bool]] = []
    theirs: list[tuple[float, float, float, float, bool]] = []
    either: list[tuple[float, float, float, float, bool]] = []
    for k in sorted(range(1, count), key=lambda k: -stats[k, cv2.CC_STAT_AREA])[:6]:
        bx, by, bw, bh, n = (int(v) for v in stats[k])
        if not OVERLAY_MIN_AREA * area <= n <= OVERLAY_MAX_AREA * area:
            continue
        still_q = still_s = False
        if q_change is not None and s_change is not None:
            part = (labels == k) & (raw > 0)  # the differing pixels themselves, not the gaps closed between them
            q_in, s_in = float(q_change[part].mean()), float(s_change[part].mean())
            still_q = q_in <= max(MIN_CHANGE, STATIC_SHARE * s_in)
            still_s = s_in <= max(MIN_CHANGE, STATIC_SHARE * q_in)
            if still_q == still_s:  # both or neither still: the side that changes less there carries it
                still_q, still_s = q_in < OWNER_RATIO * s_in, s_in < OWNER_RATIO * q_in
        box = (bx / size[0], by / size[1], bw / size[0], bh / size[1], still_q or still_s)
        (theirs if still_s and not still_q else mine if still_q else either).append(box)
    return ([_overlay_words(*b) for b in _bands(mine)[:MAX_OVERLAYS]]
            + [_overlay_words(*b) + " on this copy or the stored video" for b in _bands(either)[:MAX_OVERLAYS]],
            [_overlay_words(*b) for b in _bands(theirs)[:MAX_OVERLAYS]])


def _find(small: np.ndarray, large: np.ndarray, scales: np.ndarray) -> tuple[float, float, float, float, float]:
    """(score, x, y, w, h) of `small` found in `large` over `scales` (shares of the largest fitting size)."""
    lh, lw = large.shape
    sh, sw = small.shape
    fit = min(lw / sw, lh / sh)
    best = (-1.0, 0.0, 0.0, 0.0, 0.0)
    for scale in scales:
        w, h = int(round(sw * fit * scale)), int(round(sh * fit * scale))
        if w < 12 or h < 12 or w > lw or h > lh:
            continue
        template = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)
        if float(template.std()) < 2.0:
            continue
        result = cv2.matchTemplate(large, template, cv2.TM_CCOEFF_NORMED)
        _, score, _, (x, y) = cv2.minMaxLoc(result)
        if score > best[0]:
            best = (float(score), x / lw, y / lh, w / lw, h / lh)
    return best


def _agreed(found: list[tuple[float, float, float, float, float]]) -> tuple[float, float, float, float] | None:
    good = [f for f in found if f[0] >= MATCH_SCORE]
    if len(good) < max(1, (len(found) + 1) // 2):
        return None
    x, y, w, h = (float(np.median([g[k] for g in good])) for k in range(1, 5))
    return x, y, w, h


def _where(x: float, y: float, w: float, h: float) -> str:
    cx, cy = x + w / 2, y + h / 2
    col = "left" if cx < 0.4 else "right" if cx > 0.6 else ""
    row = "top" if cy < 0.4 else "bottom" if cy > 0.6 else ""
    return f"{row}-{col}" if row and col else row or col or "centre"


def kept_part(x: float, y: float, w: float, h: float) -> str:
    """A crop in words: "left 62% kept", "top-right corner kept (60% × 70%)", "centre kept (80% × 80%)"."""
    wide, tall = w >= KEPT_BELOW, h >= KEPT_BELOW
    if tall and not wide:
        side = "left" if x < 0.04 else "right" if x + w > 0.96 else "middle"
        return f"{side} {w:.0%} kept"
    if wide and not tall:
        side = "top" if y < 0.04 else "bottom" if y + h > 0.96 else "middle"
        return f"{side} {h:.0%} kept"
    where = _where(x, y, w, h)
    return f"{where}{' corner' if '-' in where else ''} kept ({w:.0%} × {h:.0%})"


def locate(query: Sequence[np.ndarray], stored: Sequence[np.ndarray],
           query_share: tuple[float, float], stored_share: tuple[float, float]
           ) -> tuple[str | None, str | None, str | None, tuple[float, float, float, float] | None]:
    """(kept, window, surround, window box): where the query's picture sits in the stored one (a crop), or
    the stored picture in the query's frame (a window), from grey cross-correlation over a range of scales."""
    q_pics = [_luma(_active(f, query_share)) for f in query]
    s_pics = [_luma(_active(f, stored_share)) for f in stored]
    crop = _agreed([_find(q, s, np.linspace(0.45, 1.0, 12)) for q, s in zip(q_pics, s_pics)])
    if crop is not None:  # the query's picture is (a part of) the stored one: no window to look for
        return (kept_part(*crop) if min(crop[2], crop[3]) < KEPT_BELOW else None), None, None, None
    q_frames = [_luma(f) for f in query]
    window = _agreed([_find(s, q, np.linspace(0.2, 0.9, 15)) for s, q in zip(s_pics, q_frames)])
    if window is None or window[2] * window[3] >= WINDOW_BELOW:
        return None, None, None, None
    x, y, w, h = window
    px0, py0, px1, py1 = _box((1000, 1000), query_share)
    if abs(x - px0 / 1000) < 0.04 and abs(y - py0 / 1000) < 0.04 and abs(w - (px1 - px0) / 1000) < 0.06:
        return None, None, None, None  # the window is the padded picture itself: the pads say it
    surround = None
    if len(query) >= 3:
        change = _change(query, (query[0].shape[1], query[0].shape[0]))
        inside = np.zeros(change.shape, dtype=bool)
        ch, cw = change.shape
        inside[int(y * ch): int((y + h) * ch), int(x * cw): int((x + w) * cw)] = True
        if change[~inside].size and change[inside].mean() >= MIN_CHANGE:
            surround = ("a still screen" if change[~inside].mean() <= STATIC_SHARE * change[inside].mean()
                        else "other footage")
    return None, f"{w * h:.0%} of the frame, {_where(x, y, w, h)}", surround, window


def picture_edits(query: Sequence[np.ndarray], stored: Sequence[np.ndarray], mirrored: bool = False,
                  query_share: tuple[float, float] = (1.0, 1.0),
                  stored_share: tuple[float, float] = (1.0, 1.0)) -> PictureEdits:
    """The edits matched pairs of colour frames show (RGB arrays, query[k] matched with stored[k]).

    `query_share` and `stored_share` are the share of each frame the active picture fills (the framing
    estimate, `fingerprints.explain.framing`): pads are what lies outside it.
    """
    pairs = [(q, s) for q, s in zip(query, stored)
             if q is not None and s is not None and min(q.shape[:2]) >= MIN_SIDE and min(s.shape[:2]) >= MIN_SIDE]
    if not pairs:
        return PictureEdits()
    query = [np.ascontiguousarray(q[:, ::-1]) if mirrored else q for q, _ in pairs]
    stored = [s for _, s in pairs]
    q_active = [_active(f, query_share) for f in query]
    s_active = [_active(f, stored_share) for f in stored]
    kept, window, surround, box = locate(query, stored, query_share, stored_share)
    padded = min(query_share) < 0.95 and min(query_share) < min(stored_share) - 0.05
    added, removed = ([], []) if kept or window else overlays(q_active, s_active)
    if box is not None:  # the colours of the footage are those inside its window
        q_colour = [f[int(box[1] * f.shape[0]): int((box[1] + box[3]) * f.shape[0]),
                      int(box[0] * f.shape[1]): int((box[0] + box[2]) * f.shape[1])] for f in query]
        colour = colour_edits(q_colour, s_active)
    elif added or removed:  # overlays change a picture's colours: judge them on its middle
        colour = [c for c in colour_edits([_middle(f) for f in q_active], [_middle(f) for f in s_active])
                  if not c.startswith("vignette")]
    else:
        colour = colour_edits(q_active, s_active)
    return PictureEdits(colour=colour, pad=pad_colour(query, query_share) if padded else None,
                        overlays=added, stored_overlays=removed, kept=kept, window=window, surround=surround,
                        pairs=len(pairs))
