"""Kinds of stored signal, one class each, registered by name.

A signal kind says what it is (its stored name, never renamed), how it is
computed from a video's analysis, where it is stored, which index holds it,
and ships example inputs with their expected values, which
`tests/fingerprints/test_signals.py` turns into conformance tests for every
registered kind.  Adding a kind is a new class here (plus a migration when it
needs a column or table), not edits across the pipeline, the repository and
the index: they all loop over the registry.

Two families exist today:

- `FrameView`: one 64-bit pHash per sampled frame, of one *view* of the
  normalised frame (the whole picture, its centre, a picture-in-picture
  window, the picture around that window, the moving parts in front of a
  still camera).  Views live in a hash *space*: hashes are only ever compared
  within one space (a hash of a difference image means nothing next to a hash
  of a picture).  A view with a `column` is stored (a column of the `frames`
  table) and indexed; a view without one is computed for queries only and
  looked up in the indexes of its space.
- `MediaSignal`: one payload per video (local features of its keyframes;
  later audio), stored as bytes in the `media_signals` table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from .index import FrameIndex, MultiIndexHashIndex
from .model import CENTRE_SHARE, FingerprintSettings, FrameHash, FrameViews, VideoFingerprint
from .normalize import centre

if TYPE_CHECKING:  # align imports this module
    from .align import VideoMatch

PICTURE_SPACE = "picture"
MOTION_SPACE = "motion"

_REGISTRY: dict[str, SignalKind] = {}


class SignalKind:
    """Base of every kind: concrete subclasses (those that set `name`) register themselves at import."""

    name: ClassVar[str] = ""  # stored key (schema: add a new kind, never rename one)
    description: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            return  # an abstract family
        if cls.name in _REGISTRY:
            raise TypeError(f"signal kind {cls.name!r} is registered twice "
                            f"({type(_REGISTRY[cls.name]).__name__} and {cls.__name__})")
        _REGISTRY[cls.name] = cls()


def registry() -> dict[str, SignalKind]:
    """Every registered kind by name, in registration order."""
    return dict(_REGISTRY)


def kind(name: str) -> SignalKind:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown signal kind {name!r}; known: {', '.join(_REGISTRY)}") from None


# --- frame views -----------------------------------------------------------------


@dataclass(frozen=True)
class ViewExample:
    """A conformance example: a frame built from a seed, and the hash the view must give."""

    label: str
    make_views: Callable[[], FrameViews]
    expected_hash: int | None  # None: the view does not exist for this frame


class FrameView(SignalKind):
    """A 64-bit pHash of one view of each sampled frame (see the module docstring)."""

    space: ClassVar[str] = PICTURE_SPACE
    column: ClassVar[str | None] = None  # the `frames` column that stores it; None: queries only
    against_own: ClassVar[bool] = True  # a query's view is looked up in the stored index of the same view too
    examples: ClassVar[tuple[ViewExample, ...]] = ()

    @property
    def stored(self) -> bool:
        return self.column is not None

    def image(self, views: FrameViews) -> np.ndarray | None:
        """The grey image this view hashes, or None when the frame has no such view."""
        raise NotImplementedError

    def storable(self, frame: FrameHash) -> bool:
        """Whether this view of `frame` is stored (and indexed) with the frame, when the view is a stored one."""
        return True

    def hashes_of(self, frames: Sequence[FrameHash], mirrored: bool = False,
                  stored: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(frame positions, hashes) of the frames that have this view, or of their mirror images; with
        `stored`, of those whose view is stored (`storable`)."""
        positions = [k for k, f in enumerate(frames) if self.name in f.hashes and (not stored or self.storable(f))]
        values = [(frames[k].mirrored if mirrored else frames[k].hashes)[self.name] for k in positions]
        return np.array(positions, dtype=np.int64), np.array(values, dtype=np.uint64)


class PictureView(FrameView):
    name = "picture"
    description = "the whole active picture (bars and pads cut off, still overlays masked)"
    column = "hash"

    def image(self, views: FrameViews) -> np.ndarray | None:
        return views.picture


class CentreView(FrameView):
    name = "centre"
    description = f"the central {CENTRE_SHARE:.0%} of the picture: crops, and clear of banners and badges"
    column = "centre_hash"

    def image(self, views: FrameViews) -> np.ndarray | None:
        return centre(views.picture, CENTRE_SHARE)


# A window is stored with its frame (and what is around it) only from this share of the picture: a smaller one is as
# likely an animated sticker (a GIF from a shared library) as footage, and two unrelated posts with one sticker would
# match through it.  Every fingerprint still has its smaller windows, looked up as a query's views (ingest too).
STORED_WINDOW_AREA = 0.15


class _WindowPart(FrameView):
    """The views of a composite's window and of what is around it: stored only from `STORED_WINDOW_AREA`, and
    never looked up in the stored index of their own kind (two posts with one sticker, or one player interface,
    are not one footage)."""

    against_own = False

    def storable(self, frame: FrameHash) -> bool:
        return frame.window_share >= STORED_WINDOW_AREA


class WindowView(_WindowPart):
    name = "window"
    description = ("a window of footage inside the frame: picture-in-picture, a screen recording's player, the larger "
                   "side of a split screen (stored since 0010 from 15% of the picture, so posts that are composites "
                   "are found by the footage in them; never matched against a stored window: stickers)")
    column = "window_hash"

    def image(self, views: FrameViews) -> np.ndarray | None:
        return views.window


class SurroundView(_WindowPart):
    name = "surround"
    description = ("the picture around a window: the other side of a split screen, else the picture with its window "
                   "blanked (footage under a large sticker, a picture-in-picture's background)")
    column = "surround_hash"

    def image(self, views: FrameViews) -> np.ndarray | None:
        return views.surround


class MotionView(FrameView):
    name = "motion"
    description = "what moves in front of a still camera: tells the moments of a static shot apart"
    space = MOTION_SPACE
    column = "motion_hash"

    def image(self, views: FrameViews) -> np.ndarray | None:
        return views.motion


def frame_views() -> list[FrameView]:
    return [k for k in _REGISTRY.values() if isinstance(k, FrameView)]


def stored_views() -> list[FrameView]:
    """The views stored in the `frames` table and indexed, in registry order."""
    return [k for k in frame_views() if k.stored]


def spaces() -> list[str]:
    return list(dict.fromkeys(k.space for k in frame_views()))


def index_fingerprints(fingerprints: Mapping[int, VideoFingerprint],
                       make_index: Callable[[], FrameIndex] = MultiIndexHashIndex) -> dict[str, FrameIndex]:
    """An index per stored view over fingerprints held in memory (by media id): what a store indexes."""
    indexes = {view.name: make_index() for view in stored_views()}
    for media_id, fp in fingerprints.items():
        times = np.array([f.timestamp for f in fp.frames], dtype=np.float64)
        for view in stored_views():
            positions, hashes = view.hashes_of(fp.frames, stored=True)
            if len(positions):
                indexes[view.name].add(media_id, times[positions], hashes)
    return indexes


# --- per-video payloads ----------------------------------------------------------


class SignalCollector(Protocol):
    """Builds one video's value of a `MediaSignal` from the frames `fingerprint_video` samples."""

    def feed(self, t: float, picture: np.ndarray, cut: bool,
             windows: Sequence[tuple[int, int, int, int]] = ()) -> None:
        """One sampled frame: `picture` is the grey active area (analysis size, still overlays masked);
        `windows` (x, y, width, height in the picture) are where other footage shows inside it (a
        picture-in-picture window, a screen recording's player, the sides of a split screen)."""

    def finish(self) -> Any:
        """The video's value (what `MediaSignal.to_bytes` stores)."""


class MediaSignalIndex(Protocol):
    """The index of one `MediaSignal` kind: derived data, rebuildable from the stored values."""

    def add(self, media_id: int, value: Any) -> None: ...

    def remove(self, media_id: int) -> None: ...

    def __len__(self) -> int: ...

    def serialize(self) -> bytes: ...


@dataclass(frozen=True)
class MediaExample:
    """A conformance example: the frames `fingerprint_video` would feed, and what the value must show.

    `expected` gives inclusive ranges of `MediaSignal.summary` entries.  A
    `query` example is collected as a query (with its query-time views) and
    matched against every example that is not a query: it must find exactly
    the labels in `matches`.
    """

    label: str
    make_frames: Callable[[], list[tuple[float, np.ndarray, bool]]]  # (time, picture, cut)
    expected: Mapping[str, tuple[float, float]]
    query: bool = False
    matches: tuple[str, ...] = ()


class MediaSignal(SignalKind):
    """A signal stored once per video as bytes (`media_signals` table), with an index of its own.

    A kind computes its value from the frames the fingerprinting pass already
    decodes (`collector`), so adding a kind adds no decode; `match` turns a
    query's value into `VideoMatch`es against the kind's index, which the
    matching job fuses with the frame-hash route.  `version` is stored with
    every value: values of another version are never compared (recompute them).
    A collector made with `query=True` may add query-time parts to the value
    (a keypoint kind's mirrored view) that `to_bytes` leaves out: store what
    `to_bytes` gives, and match the value `finish()` returned.
    """

    version: ClassVar[int] = 1
    examples: ClassVar[tuple[MediaExample, ...]] = ()

    def collector(self, settings: FingerprintSettings, query: bool = False) -> SignalCollector:
        raise NotImplementedError

    def to_bytes(self, value: Any) -> bytes:
        raise NotImplementedError

    def from_bytes(self, blob: bytes) -> Any:
        raise NotImplementedError

    def summary(self, value: Any) -> dict[str, float]:
        """A few numbers that describe a value (sizes, counts): for examples, logs and reports."""
        raise NotImplementedError

    def make_index(self) -> MediaSignalIndex:
        raise NotImplementedError

    def deserialize_index(self, blob: bytes) -> MediaSignalIndex:
        """An index from `MediaSignalIndex.serialize` bytes (raises ValueError for anything else)."""
        raise NotImplementedError

    def match(self, query: Any, index: MediaSignalIndex, load: Callable[[int], Any],
              durations: Mapping[int, float], query_duration: float,
              exclude: set[int] = frozenset()) -> list[VideoMatch]:
        """Matches of a query's value in `index`; `load(media_id)` reads a stored value for verification."""
        raise NotImplementedError


def media_signals() -> list[MediaSignal]:
    return [k for k in _REGISTRY.values() if isinstance(k, MediaSignal)]


# --- examples ----------------------------------------------------------------------


def example_scene(seed: int, shape: tuple[int, int] = (180, 320)) -> np.ndarray:
    """A deterministic grey frame with structure at several scales (no randomness beyond the seed)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    rng = np.random.default_rng(seed)
    image = np.zeros(shape)
    for _ in range(6):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(10, 60)
        image += rng.uniform(-90, 90) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    image += 40 * np.sin(x / rng.uniform(8, 30)) * np.cos(y / rng.uniform(8, 30))
    return np.clip(128 + image, 0, 255).astype(np.uint8)


def _views(seed: int, window: bool = False, motion: bool = False) -> Callable[[], FrameViews]:
    def make() -> FrameViews:
        picture = example_scene(seed)
        inner = example_scene(seed + 100, (60, 100)) if window else None
        surround = None
        if window:
            surround = picture.copy()
            surround[20:80, 30:130] = 0
        return FrameViews(picture=picture, window=inner, surround=surround,
                          motion=example_scene(seed + 200) if motion else None)
    return make


# Expected hashes were computed once with `fingerprints.phash.PHashFingerprinter` (imagehash's pHash):
# a change in any of them changes stored fingerprints and needs a new FingerprintSettings version.
PictureView.examples = (ViewExample("scene 1", _views(1), 0x95A6F0704D334FF0),
                        ViewExample("scene 2", _views(2), 0x9C3BEA449B64649B))
CentreView.examples = (ViewExample("scene 1", _views(1), 0xA584B577D932D832),
                       ViewExample("scene 2", _views(2), 0x8D92474D936D966C))
WindowView.examples = (ViewExample("no window", _views(1), None),
                       ViewExample("window", _views(3, window=True), 0x85E0681F7A1F6E1C))
SurroundView.examples = (ViewExample("no window", _views(1), None),
                         ViewExample("window", _views(3, window=True), 0x9C3DF2D2C3F0F0C0))
MotionView.examples = (ViewExample("moving shot", _views(1), None),
                       ViewExample("still camera", _views(4, motion=True), 0xC42374D4B9FCA954))


from . import keypoints  # noqa: E402,F401  (registers the "keypoints" media signal)
