"""Fingerprint a whole video: decode, sample, normalise, hash.

Sampling keeps a dense floor (a frame at least every `floor_interval`
seconds, on a grid fine enough that a clip starting mid-second still lines
up) plus the first frame after every scene cut, which is where edited copies
agree best.  Frames are processed in bounded chunks (a shot, or at most
CHUNK_FRAMES): per chunk the active area is estimated (bars and blurred pads
cut off), still overlays are masked (account banners and badges), and a
picture-in-picture window is looked for, so memory stays flat whatever the
video's length.  Each frame gets a hash of its active area and of that
area's centre, and, where a window was found (a picture-in-picture window, a
screen recording's player, the sides of a split screen), of the window and of
the picture around it (the other side of a split); in front of a still
camera, what moves gets a hash of its own.  Which views are hashed, which are
stored, and what each is for, is `fingerprints.signals`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from .decode import NO_LIMITS, DecodeLimits, VideoStreamInfo, iter_gray_frames
from .model import CropBox, FingerprintSettings, FrameHash, FrameViews, VideoFingerprint
from .normalize import (crop, detect_active_area, fill_masked, find_window, mask_at, moving_parts,
                        static_overlay_mask, still_background)
from .phash import PHashFingerprinter
from .signals import MediaSignal, frame_views, media_signals

CHUNK_FRAMES = 48  # sampled frames per active-area estimate (~12 s at 4 per second)
SHOT_FRAMES = 4  # a scene cut starts a new estimate once the chunk has this many frames
AREA_SAMPLE = 16  # frames of a chunk used for the estimate


def _tiny(frame: np.ndarray) -> np.ndarray:
    t = cv2.resize(frame, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float32)
    return (t - t.mean()) / (t.std() + 8.0)


class _Sampler:
    """Decides which analysis frames get hashed."""

    def __init__(self, settings: FingerprintSettings):
        self.settings = settings
        self.previous: np.ndarray | None = None
        self.last_taken = -1e9

    def take(self, t: float, frame: np.ndarray) -> tuple[bool, bool]:
        tiny = _tiny(frame)
        cut = self.previous is not None and float(np.abs(tiny - self.previous).mean()) > self.settings.scene_threshold
        self.previous = tiny
        due = t - self.last_taken >= self.settings.floor_interval - 1e-6
        if cut or due:
            self.last_taken = t
            return True, cut
        return False, False


def fingerprint_video(
    path: Path | str,
    settings: FingerprintSettings | None = None,
    info: VideoStreamInfo | None = None,
    progress: Callable[[float], None] | None = None,
    limits: DecodeLimits = NO_LIMITS,
    query: bool = False,
    media: Sequence[MediaSignal] | None = None,
) -> VideoFingerprint:
    """Fingerprint `path`; raises `VideoDecodeError` for unreadable files.

    `info` (from `stream_info`) lets the decode check for truncation against
    the declared duration; without it only ffmpeg's own complaints count.
    `limits` bound the ffmpeg process (CPU seconds, memory).  Every registered
    media signal (`fingerprints.signals.media_signals`) is fed the same
    sampled pictures and its value lands in `result.signals`; with `query`
    the values carry their query-time views too (never stored).  `media`
    names the kinds to compute instead of all registered ones (``[]``: none).
    """
    settings = settings or FingerprintSettings()
    path = Path(path)
    hasher = PHashFingerprinter()
    sampler = _Sampler(settings)
    result = VideoFingerprint(settings=settings, duration=(info.duration if info else None) or 0.0)
    chunk: list[tuple[float, np.ndarray, bool]] = []
    last_t = 0.0
    overlay: dict[str, object] = {}  # the last shot's active area and still-overlay cells
    collectors = {kind.name: kind.collector(settings, query=query)
                  for kind in (media_signals() if media is None else media)}

    def flush() -> None:
        if not chunk:
            return
        step = max(1, len(chunk) // AREA_SAMPLE)
        box = detect_active_area([f for _, f, _ in chunk[::step]], settings.border_threshold)
        if not result.crops or result.crops[-1][1] != box:
            result.crops.append((chunk[0][0], box))
        sample = [crop(f, box) for _, f, _ in chunk[::step]]
        cells = static_overlay_mask(sample, overlay.get("cells") if overlay.get("box") == box else None)
        overlay.update(box=box, cells=cells)
        mask = None if cells is None else mask_at(cells, sample[0].shape)
        window, side = find_window(sample)
        if window is not None:  # the footage in the window (or on either side of a split) may have bars of its own
            window = _inner(sample, window, box, settings)
            side = None if side is None else _inner(sample, side, box, settings)
        # a still camera: what moves in front of it tells its moments apart (and captions do not move)
        background = still_background(sample)
        blank = None
        if window is not None and side is None:
            blank = np.zeros(sample[0].shape, dtype=bool)
            blank[window.y:window.y + window.height, window.x:window.x + window.width] = True
            if mask is not None:
                blank |= mask
        share = 0.0 if window is None else window.width * window.height / (box.width * box.height)
        windows = [(b.x, b.y, b.width, b.height) for b in (window, side) if b is not None]
        for t, frame, cut in chunk:
            active = crop(frame, box)
            picture = active if mask is None else fill_masked(active, mask)
            for collector in collectors.values():
                collector.feed(t, picture, cut, windows)
            around = crop(active, side) if side is not None else None if blank is None else fill_masked(active, blank)
            _hash_one(result, hasher, settings, t, picture, cut,
                      mask is not None, None if window is None else crop(active, window), around,
                      None if background is None else moving_parts(active, background), share)
        chunk.clear()

    for t, frame in iter_gray_frames(path, settings.analysis_fps, settings.analysis_size, info,
                                     settings.fast_decode, limits):
        result.frames_decoded += 1
        last_t = t
        taken, cut = sampler.take(t, frame)
        if taken:
            if cut and len(chunk) >= SHOT_FRAMES:
                flush()  # compilations change framing at cuts: estimate each shot's area on its own
            chunk.append((t, frame.copy(), cut))
            if len(chunk) >= CHUNK_FRAMES:
                flush()
                if progress:
                    progress(t)
    flush()
    for name, collector in collectors.items():
        result.signals[name] = collector.finish()
    if progress:
        progress(last_t)
    if not result.duration:
        result.duration = last_t + 1.0 / settings.analysis_fps
    return result


def _inner(sample: list[np.ndarray], window: CropBox, box: CropBox, settings: FingerprintSettings) -> CropBox:
    """`window` less the bars of the footage inside it, in the active picture's coordinates."""
    inner = detect_active_area([crop(f, window) for f in sample], settings.border_threshold)
    return CropBox(window.x + inner.x, window.y + inner.y, inner.width, inner.height, box.width, box.height)


def _hash_one(result: VideoFingerprint, hasher: PHashFingerprinter, settings: FingerprintSettings,
              t: float, active: np.ndarray, cut: bool, template: bool, window: np.ndarray | None,
              surround: np.ndarray | None, motion: np.ndarray | None, window_share: float = 0.0) -> None:
    quality = float(active.std())
    if quality < settings.min_frame_std or min(active.shape) < 8:
        result.frames_skipped_flat += 1
        result.flat_frames.append((round(t, 4), round(float(active.mean()), 1)))
        return
    has_window = window is not None and min(window.shape) >= 8 and float(window.std()) >= settings.min_frame_std
    views = FrameViews(picture=active, window=window if has_window else None,
                       surround=surround if has_window else None, motion=motion)
    hashes, mirrored = {}, {}
    for view in frame_views():
        image = view.image(views)
        if image is not None:
            hashes[view.name], mirrored[view.name] = hasher.hash_frame_and_mirror(image)
    result.frames.append(FrameHash(index=len(result.frames), timestamp=round(t, 4), hashes=hashes,
                                   mirrored=mirrored, is_scene_cut=cut, quality=round(quality, 2),
                                   template=template, window_share=round(window_share, 4) if has_window else 0.0))


def crops_summary(boxes: list[tuple[float, CropBox]]) -> list[dict]:
    return [{"from": t, "x": b.x, "y": b.y, "width": b.width, "height": b.height,
             "frame_width": b.frame_width, "frame_height": b.frame_height} for t, b in boxes]
