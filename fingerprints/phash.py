"""Perceptual hash of one normalised frame, and of its mirror image.

imagehash's pHash (DCT of a 32x32 greyscale thumbnail, 64 bits) is the
frame hash, bit for bit.  The mirrored hash lets a query find horizontally
flipped re-uploads without storing two hashes per frame; it comes from the
same DCT, since flipping a thumbnail only flips the sign of its odd
horizontal frequencies, so a frame costs one resize and one DCT for both.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_HASH_SIZE = 8
_THUMB = 32
# scipy.fftpack.dct type II (unnormalised) as a matrix: D[k, n] = 2 cos(pi k (2n + 1) / 2N).
# Same numbers as imagehash's DCT, without importing SciPy (half a second at every start).
_DCT = 2.0 * np.cos(np.pi * np.arange(_THUMB)[:, None] * (2 * np.arange(_THUMB)[None, :] + 1) / (2 * _THUMB))
# (-1)^u for horizontal frequency u: the DCT of the mirrored thumbnail
_MIRROR_SIGNS = np.where(np.arange(_HASH_SIZE) % 2 == 0, 1.0, -1.0)[None, :]


def bits_to_int(bits: np.ndarray) -> int:
    """Row-major boolean array to an unsigned integer, first bit most significant."""
    value = 0
    for bit in bits.ravel():
        value = (value << 1) | int(bool(bit))
    return value


class PHashFingerprinter:
    """64-bit pHash of a greyscale frame, as `imagehash.phash` computes it."""

    name = "phash64"
    bits = 64

    def _low_frequencies(self, gray: np.ndarray) -> np.ndarray:
        thumb = Image.fromarray(gray).convert("L").resize((_THUMB, _THUMB), Image.Resampling.LANCZOS)
        pixels = np.asarray(thumb, dtype=np.float64)
        return (_DCT[:_HASH_SIZE] @ pixels @ _DCT[:_HASH_SIZE].T)  # the low 8x8 of DCT(DCT(x, rows), cols)

    def hash_frame(self, gray: np.ndarray) -> int:
        low = self._low_frequencies(gray)
        return bits_to_int(low > np.median(low))

    def hash_frame_and_mirror(self, gray: np.ndarray) -> tuple[int, int]:
        low = self._low_frequencies(gray)
        mirrored = low * _MIRROR_SIGNS
        return bits_to_int(low > np.median(low)), bits_to_int(mirrored > np.median(mirrored))


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
