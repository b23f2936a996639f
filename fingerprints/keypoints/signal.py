"""The `"keypoints"` media signal: ORB keypoints of keyframes, an LSH index, RANSAC and a time line.

Registered in `fingerprints.signals` like every kind; its examples (moving
generated scenes, an edited copy, unrelated footage under a shared template)
are conformance tests in `tests/fingerprints/test_signals.py`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..model import FingerprintSettings
from ..signals import MediaExample, MediaSignal, example_scene
from .features import KeypointCollector, KeypointParams, Keyframes
from .index import LshKeypointIndex
from .match import KeypointMatchParams, match_keyframes

if TYPE_CHECKING:
    from ..align import VideoMatch


class KeypointSignal(MediaSignal):
    name = "keypoints"
    description = ("ORB keypoints of keyframes (cuts and about one per 1.2 s) on content that moves: "
                   "rotations, stretches, off-centre crops, windows and screen recordings")
    # 2: detection confined to what moves (version 1 spent most of the budget on still content);
    # 3: windows in the picture (picture-in-picture, a player, a split's sides) get keypoints of their own
    version = 3

    def __init__(self, params: KeypointParams | None = None, match_params: KeypointMatchParams | None = None):
        self.params = params or KeypointParams()
        self.match_params = match_params or KeypointMatchParams()

    def collector(self, settings: FingerprintSettings, query: bool = False) -> KeypointCollector:
        return KeypointCollector(self.params, query=query)

    def to_bytes(self, value: Keyframes) -> bytes:
        return value.to_bytes()

    def from_bytes(self, blob: bytes) -> Keyframes:
        return Keyframes.from_bytes(blob)

    def summary(self, value: Keyframes) -> dict[str, float]:
        return {"keyframes": len(value), "keypoints": value.keypoint_count,
                "views": len(value.views), "bytes": len(value.to_bytes())}

    def make_index(self) -> LshKeypointIndex:
        return LshKeypointIndex()

    def deserialize_index(self, blob: bytes) -> LshKeypointIndex:
        return LshKeypointIndex.deserialize(blob)

    def match(self, query: Keyframes, index: LshKeypointIndex, load: Callable[[int], Keyframes],
              durations: Mapping[int, float], query_duration: float,
              exclude: set[int] = frozenset()) -> list[VideoMatch]:
        interval = self.params.query_interval if query.views else self.params.interval
        return match_keyframes(query, lambda view: index.query(view, exclude), load, durations, query_duration,
                               interval, set(exclude), self.match_params)


# --- examples: frames as `fingerprint_video` feeds them ----------------------------------------------------


def _texture(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """A generated scene with corners to find: shapes and lines of random greys over `example_scene`."""
    rng = np.random.default_rng(seed)
    h, w = shape
    image = example_scene(seed, shape)
    for _ in range(h * w // 600):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        grey = int(rng.integers(0, 256))
        shape_kind = int(rng.integers(0, 3))
        if shape_kind == 0:
            cv2.rectangle(image, (x, y), (x + int(rng.integers(4, 30)), y + int(rng.integers(4, 30))), grey, -1)
        elif shape_kind == 1:
            cv2.circle(image, (x, y), int(rng.integers(3, 15)), grey, -1)
        else:
            cv2.line(image, (x, y), (x + int(rng.integers(-40, 40)), y + int(rng.integers(-40, 40))), grey, 2)
    return image


def _shots(seed: int, shots: int = 4, seconds: float = 2.0, fps: float = 4.0, size: tuple[int, int] = (180, 320),
           template: int | None = None) -> list[tuple[float, np.ndarray, bool]]:
    """Shots of a camera panning over generated scenes; `template` draws that seed's still badge on top."""
    h, w = size
    badge = _texture(template, (50, 110)) if template is not None else None
    frames = []
    for shot in range(shots):
        canvas = _texture(seed * 10 + shot, (h + 60, w + 80))
        for k in range(int(seconds * fps)):
            t = k / fps
            x, y = int(round(t * 30)), int(round(30 + 25 * np.sin(2 * t)))
            frame = canvas[y:y + h, x:x + w].copy()
            if badge is not None:
                frame[6:56, 6:116] = badge
            frames.append((shot * seconds + t, frame, k == 0))
    return frames


def _edited(seed: int) -> list[tuple[float, np.ndarray, bool]]:
    """The same shots rotated by 7 degrees, zoomed, stretched and cropped off-centre."""
    out = []
    for t, frame, cut in _shots(seed):
        h, w = frame.shape
        m = cv2.getRotationMatrix2D((w * 0.4, h * 0.6), 7.0, 1.25)
        m[0] *= 0.85  # stretch
        warped = cv2.warpAffine(frame, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        out.append((t, np.ascontiguousarray(warped[10:h - 30, 40:w]), cut))
    return out


KeypointSignal.examples = (
    MediaExample("shots", lambda: _shots(11), {"keyframes": (8, 8), "keypoints": (1200, 1600), "views": (0, 0)}),
    MediaExample("shots edited", lambda: _edited(11), {"keyframes": (16, 16), "views": (5, 5)}, query=True,
                 matches=("shots",)),
    MediaExample("other shots under a template", lambda: _shots(12, template=5), {"keyframes": (8, 8)}),
    MediaExample("other footage, same template", lambda: _shots(13, template=5), {"keyframes": (16, 16)},
                 query=True),
)
