"""Perceptual hash of one normalised frame, and of its mirror image.

imagehash's pHash (DCT of a 32x32 greyscale thumbnail, 64 bits) is the
reference frame hash.  The mirrored hash lets a query find horizontally
flipped re-uploads without storing two hashes per frame.
"""

from __future__ import annotations

import imagehash
import numpy as np
from PIL import Image


def bits_to_int(bits: np.ndarray) -> int:
    """Row-major boolean array to an unsigned integer, first bit most significant."""
    value = 0
    for bit in bits.ravel():
        value = (value << 1) | int(bool(bit))
    return value


def int_to_hex(value: int) -> str:
    return f"{value:016x}"


class PHashFingerprinter:
    """64-bit pHash of a greyscale frame via imagehash."""

    name = "phash64"
    bits = 64

    def hash_frame(self, gray: np.ndarray) -> int:
        return bits_to_int(imagehash.phash(Image.fromarray(gray)).hash)

    def hash_frame_and_mirror(self, gray: np.ndarray) -> tuple[int, int]:
        mirrored = np.ascontiguousarray(gray[:, ::-1])
        return self.hash_frame(gray), self.hash_frame(mirrored)


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()
