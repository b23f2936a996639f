"""Peer methods, run on the same corpus as our matcher: vPDQ, TMK+PDQF, framewise pHash.

Each peer is a pair: a hasher (one file -> its hashes; vPDQ's and pHash's are
cached on disk, keyed by the file's name, size and mtime) and a pairwise rule (query hashes, stored
hashes -> match or not).  The rules are the published ones, made symmetric
where that only helps the peer:

- vPDQ: frames with quality < 50 are dropped; a frame matches when some frame
  of the other video is within Hamming distance 31 (of 256); the videos
  match when >= 80% of the query's frames match *or* >= 80% of the stored
  video's frames do (vPDQ's own two percentages; the second lets an excerpt
  find the video it was cut from, the first the reverse).  "1 hash/s" is the
  every-frame hash list thinned to the first frame of every second, which is
  what ``seconds_per_hash=1`` selects (checked on the chair set: identical).
- TMK+PDQF: whole-video level-1 and level-2 scores both >= 0.7.
- pHash: imagehash pHash of 1 fps frames (ffmpeg's fps filter, grey,
  128x128 before imagehash's own 32x32 resize); frame match <= 10 bits of 64;
  video match when >= 50% of the query's frames or of the stored video's
  frames match.
"""

from __future__ import annotations

import os
import resource
import subprocess
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import MEDIA

HASHES = MEDIA / "hashes"

try:
    import vpdq
except ImportError:  # pragma: no cover - optional baseline
    vpdq = None
try:
    import tmkpy
except ImportError:  # pragma: no cover - optional baseline
    tmkpy = None
try:
    import imagehash
    from PIL import Image
except ImportError:  # pragma: no cover - optional baseline
    imagehash = None


def cpu_seconds() -> float:
    return sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for a in ("ru_utime", "ru_stime"))


@contextmanager
def _quiet_stderr():
    """tmkpy's ffmpeg child writes its banner to our stderr; send fd 2 to /dev/null meanwhile."""
    saved = os.dup(2)
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(null)
        os.close(saved)


def _cache_path(kind: str, path: Path, suffix: str) -> Path:
    st = path.stat()
    return HASHES / kind / f"{path.stem}-{st.st_size}-{int(st.st_mtime)}{suffix}"


@dataclass
class FrameHashes:
    times: np.ndarray  # seconds
    words: np.ndarray  # (frames, words) uint64


def vpdq_every_frame(path: Path) -> FrameHashes:
    cache = _cache_path("vpdq", path, ".npz")
    if cache.exists():
        with np.load(cache) as z:
            return FrameHashes(z["times"], z["words"])
    feats = vpdq.computeHash(input_video_filename=str(path), seconds_per_hash=0)
    keep = [f for f in feats if f.quality >= 50]
    words = np.array([np.array(f.hash["w"], dtype=np.uint16).view(np.uint64) for f in keep],
                     dtype=np.uint64).reshape(-1, 4)
    times = np.array([f.timestamp for f in keep], dtype=np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, times=times, words=words)
    return FrameHashes(times, words)


def vpdq_one_per_second(every: FrameHashes) -> FrameHashes:
    sec = np.floor(every.times + 1e-6)
    first = np.concatenate([[True], sec[1:] != sec[:-1]]) if len(sec) else np.zeros(0, bool)
    return FrameHashes(every.times[first], every.words[first])


def phash_1fps(path: Path) -> FrameHashes:
    cache = _cache_path("phash", path, ".npz")
    if cache.exists():
        with np.load(cache) as z:
            return FrameHashes(z["times"], z["words"])
    raw = subprocess.run(["nice", "-n", "10", "ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-an", "-vf",
                          "fps=1,scale=128:128,format=gray", "-f", "rawvideo", "-"],
                         capture_output=True, check=True).stdout
    frames = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 128, 128)
    words = np.array([int(str(imagehash.phash(Image.fromarray(f))), 16) for f in frames], dtype=np.uint64)
    times = np.arange(len(frames), dtype=np.float64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, times=times, words=words.reshape(-1, 1))
    return FrameHashes(times, words.reshape(-1, 1))


def tmk_features(path: Path):
    """Not cached on disk: tmkpy's reader returns a shared_ptr wrapper that its own scorers reject."""
    with _quiet_stderr():
        return tmkpy.hashVideo(str(path), "/usr/bin/ffmpeg")


class FramewiseMatcher:
    """All stored frames in one array; one pass per query gives both coverages for every stored item."""

    def __init__(self, stored: dict[str, FrameHashes], max_distance: int, threshold: float):
        self.names = list(stored)
        self.max_distance, self.threshold = max_distance, threshold
        counts = [len(stored[n].words) for n in self.names]
        self.starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.counts = np.array(counts)
        width = next((h.words.shape[1] for h in stored.values() if len(h.words)), 1)
        self.words = np.concatenate([stored[n].words.reshape(-1, width) for n in self.names]) \
            if sum(counts) else np.zeros((0, width), np.uint64)

    def matches(self, query: FrameHashes, exclude: str) -> set[str]:
        if not len(query.words) or not len(self.words):
            return set()
        hit_cols = np.zeros(len(self.words), dtype=bool)
        q_hit = np.zeros((len(query.words), len(self.names)), dtype=bool)
        nonempty = self.counts > 0
        for a in range(0, len(query.words), 64):
            block = query.words[a:a + 64]
            dist = np.zeros((len(block), len(self.words)), dtype=np.int32)
            for w in range(self.words.shape[1]):
                dist += np.bitwise_count(block[:, w, None] ^ self.words[None, :, w])
            near = dist <= self.max_distance
            hit_cols |= near.any(axis=0)
            q_hit[a:a + len(block), nonempty] = np.logical_or.reduceat(near, self.starts[nonempty], axis=1)
        q_frac = q_hit.mean(axis=0)
        s_frac = np.zeros(len(self.names))
        s_frac[nonempty] = np.add.reduceat(hit_cols, self.starts[nonempty]) / self.counts[nonempty]
        return {n for n, qf, sf in zip(self.names, q_frac, s_frac)
                if n != exclude and max(qf, sf) >= self.threshold}


class TmkMatcher:
    def __init__(self, stored: dict[str, object], level1: float = 0.7, level2: float = 0.7):
        self.stored, self.level1, self.level2 = stored, level1, level2

    def matches(self, query, exclude: str) -> set[str]:
        found = set()
        for name, feats in self.stored.items():
            if name == exclude:
                continue
            if (tmkpy.TMKFeatureVectors_computeLevel1Score(query, feats) >= self.level1
                    and tmkpy.TMKFeatureVectors_computeLevel2Score(query, feats) >= self.level2):
                found.add(name)
        return found


@dataclass
class Peer:
    name: str
    hasher: Callable[[Path], object]
    matcher: Callable[[dict[str, object]], object]
    derive: Callable[[object], object] | None = None  # from another peer's hashes


def available_peers() -> tuple[list[Peer], list[str]]:
    """The peers that can run here, and a note for each that cannot."""
    peers, notes = [], []
    if vpdq is not None:
        peers.append(Peer("vPDQ 1/s", vpdq_every_frame, lambda s: FramewiseMatcher(s, 31, 0.8),
                          derive=vpdq_one_per_second))
        peers.append(Peer("vPDQ all", vpdq_every_frame, lambda s: FramewiseMatcher(s, 31, 0.8)))
    else:
        notes.append("vPDQ not installed (see benchmarks/README.md)")
    if tmkpy is not None:
        peers.append(Peer("TMK", tmk_features, TmkMatcher))
    else:
        notes.append("tmkpy not installed: apt-get install -y swig && pip install tmkpy")
    if imagehash is not None:
        peers.append(Peer("pHash", phash_1fps, lambda s: FramewiseMatcher(s, 10, 0.5)))
    else:
        notes.append("imagehash not installed")
    return peers, notes
