"""Value types shared by the fingerprinting, indexing and alignment code.

Everything here is plain data: no I/O, no database.  A `FingerprintSettings`
travels with every fingerprint so fingerprints made with different settings are
never compared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class FingerprintSettings:
    """Every parameter that changes the bits of a stored frame hash.

    `key()` is stored with the frames; bump `version` whenever the algorithm
    changes in a way the parameters do not show.
    """

    algorithm: str = "phash64"
    version: int = 4  # 2: the active area per shot; 3: centre hashes, still overlays masked, windows (queries);
    # 4: a blurred pad must start with a step (smooth sides of footage are not pads); moving parts of still shots
    analysis_fps: float = 8.0  # frames per second decoded for analysis
    analysis_size: int = 320  # long side of decoded analysis frames, pixels
    floor_interval: float = 0.25  # a frame is hashed at least this often (s)
    scene_threshold: float = 0.35  # normalised frame difference that marks a cut
    min_frame_std: float = 6.0  # frames flatter than this (grey levels) are skipped
    border_threshold: int = 24  # luma at or below this counts as a black bar
    fast_decode: bool = True  # skip B-frames and deblocking: ~50% less decoding, timing within 2 frames

    def params(self) -> dict:
        return asdict(self)

    def key(self) -> str:
        """A short stable name for these settings, e.g. ``phash64-v1-3f2a9c1d``."""
        blob = json.dumps(self.params(), sort_keys=True).encode()
        return f"{self.algorithm}-v{self.version}-{hashlib.sha256(blob).hexdigest()[:8]}"


@dataclass(frozen=True)
class CropBox:
    """Active picture inside a decoded frame (analysis-frame pixels)."""

    x: int
    y: int
    width: int
    height: int
    frame_width: int
    frame_height: int

    @property
    def is_full(self) -> bool:
        return (self.x, self.y, self.width, self.height) == (0, 0, self.frame_width, self.frame_height)


@dataclass(frozen=True)
class FrameViews:
    """The images of one sampled frame that frame views hash (see `fingerprints.signals`)."""

    picture: np.ndarray  # the active area, still overlays masked
    window: np.ndarray | None = None  # a picture-in-picture window, when one was found and is not flat
    surround: np.ndarray | None = None  # the picture with that window blanked
    motion: np.ndarray | None = None  # what moves in front of a still camera (`normalize.moving_parts`)


@dataclass(frozen=True)
class FrameHash:
    index: int  # position among the hashed frames of this video
    timestamp: float  # seconds from the start
    hashes: dict[str, int]  # view name (`fingerprints.signals`) -> unsigned 64-bit pHash of that view
    mirrored: dict[str, int] = field(default_factory=dict)  # view name -> hash of the flipped view (queries)
    is_scene_cut: bool = False
    quality: float = 0.0  # grey-level standard deviation of the normalised frame
    template: bool = False  # a still overlay (banner, badge) was masked out before hashing
    window_share: float = 0.0  # share of the picture a window covers (`window` view), 0 without one

    @property
    def hash(self) -> int:
        """The hash of the whole picture, which every hashed frame has."""
        return self.hashes["picture"]


CENTRE_SHARE = 0.7  # the centre view: this share of the picture's width and height


@dataclass
class VideoFingerprint:
    settings: FingerprintSettings
    duration: float
    frames: list[FrameHash] = field(default_factory=list)
    crops: list[tuple[float, CropBox]] = field(default_factory=list)  # (from time, box)
    frames_decoded: int = 0
    frames_skipped_flat: int = 0
    flat_frames: list[tuple[float, float]] = field(default_factory=list)  # (time, mean grey level) of those
    signals: dict[str, object] = field(default_factory=dict)  # `MediaSignal` name -> this video's value
