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
class FrameHash:
    index: int  # position among the hashed frames of this video
    timestamp: float  # seconds from the start
    hash: int  # unsigned 64-bit
    mirrored_hash: int  # hash of the horizontally flipped frame (used for queries)
    is_scene_cut: bool = False
    quality: float = 0.0  # grey-level standard deviation of the normalised frame
    centre_hash: int | None = None  # hash of the central part of the active area (crops, account templates)
    centre_mirrored_hash: int | None = None
    template: bool = False  # a still overlay (banner, badge) was masked out before hashing
    window_hash: int | None = None  # hash of a picture-in-picture window, when one was found (queries only)
    window_mirrored_hash: int | None = None
    surround_hash: int | None = None  # hash of the frame with that window blanked (a sticker over footage)
    surround_mirrored_hash: int | None = None
    motion_hash: int | None = None  # hash of what moves in front of a still camera (`normalize.moving_parts`)
    motion_mirrored_hash: int | None = None


KIND_FULL = 0  # hash of the whole active area
KIND_CENTRE = 1  # hash of its central CENTRE_SHARE x CENTRE_SHARE
KIND_WINDOW = 2  # hash of a window of footage inside other footage (picture-in-picture)
KIND_SURROUND = 3  # hash of the frame with that window blanked (the footage under a large sticker)
KIND_MOTION = 4  # hash of the moving parts in front of a still camera (a hash space of its own)
CENTRE_SHARE = 0.7


@dataclass
class VideoFingerprint:
    settings: FingerprintSettings
    duration: float
    frames: list[FrameHash] = field(default_factory=list)
    crops: list[tuple[float, CropBox]] = field(default_factory=list)  # (from time, box)
    frames_decoded: int = 0
    frames_skipped_flat: int = 0
    flat_frames: list[tuple[float, float]] = field(default_factory=list)  # (time, mean grey level) of those


def matchable_hashes(frames: list[FrameHash], mirrored: bool = False,
                     query: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(frame positions, kinds, hashes) that are indexed, or with `query`, looked up.

    Every frame contributes its whole-area hash and the hash of its centre:
    a re-upload cropped to about CENTRE_SHARE matches the centre of the
    original with its whole area, and the centre of a frame stays clear of
    the banners and badges that account templates draw at the edges.  A
    query also looks up its picture-in-picture windows: they find the
    footage shown in them, and so does the rest of the frame with the window
    blanked (the footage under a large sticker).  Stored windows are not
    indexed: a window may hold a sticker or a clip that many unrelated posts
    share.
    """
    positions, kinds, hashes = [], [], []
    for k, f in enumerate(frames):
        positions.append(k)
        kinds.append(KIND_FULL)
        hashes.append(f.mirrored_hash if mirrored else f.hash)
        if f.centre_hash is not None:
            positions.append(k)
            kinds.append(KIND_CENTRE)
            hashes.append(f.centre_mirrored_hash if mirrored else f.centre_hash)
        if query and f.window_hash is not None:
            positions.append(k)
            kinds.append(KIND_WINDOW)
            hashes.append(f.window_mirrored_hash if mirrored else f.window_hash)
        if query and f.surround_hash is not None:
            positions.append(k)
            kinds.append(KIND_SURROUND)
            hashes.append(f.surround_mirrored_hash if mirrored else f.surround_hash)
    return (np.array(positions, dtype=np.int64), np.array(kinds, dtype=np.int8),
            np.array(hashes, dtype=np.uint64))


def motion_hashes(frames: list[FrameHash], mirrored: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(frame positions, hashes) of the moving parts of still-camera frames: indexed and looked up apart
    from the picture hashes, since a hash of a difference image is not comparable with a hash of a picture."""
    positions = [k for k, f in enumerate(frames) if f.motion_hash is not None]
    hashes = [frames[k].motion_mirrored_hash if mirrored else frames[k].motion_hash for k in positions]
    return np.array(positions, dtype=np.int64), np.array(hashes, dtype=np.uint64)
