"""A frame index that lives on disk and opens in constant time.

`MultiIndexHashIndex` is rebuilt from the database at every process start:
about 4.4 us of CPU and 400 bytes of peak memory per stored frame, so at 10^7
frames a cold ``find-earliest`` spends most of a minute and 4 GB before it
looks anything up.  `SegmentedHashIndex` keeps the index in one directory per
(signal kind, fingerprint settings) instead, the way Lucene and LSM trees do:

- **Segments** are immutable files, written once and memory-mapped.  Each holds
  a batch of frames (hashes, timestamps) ordered by media, a media -> row-range
  map, and per band of the multi-index its bucket table (offsets), the row
  permutation and a copy of the hashes in bucket order (so checking a bucket's
  candidates reads memory in order).  Opening one reads its 4 KB header and
  footer and maps the rest: a query pays for the pages it touches, not for the
  store.
- A small JSON **manifest** lists the live segments, the removed media
  (tombstones) and the **high-water mark**: the largest source row id (the
  frames table's primary key) the index covers, rows without a hash for it
  included (`append`'s ``covered``).  A process catches up with what others
  stored by reading only the rows above the mark.
- **Writers** take an exclusive `flock` on ``lock`` in the directory, write a
  segment under a temporary name, fsync it, rename it, then publish by an
  atomic ``os.replace`` of the manifest.  Readers never take the lock and never
  see a half-written segment: a file is listed only once it is complete.  A
  writer killed before the swap leaves files no manifest lists; the next writer
  deletes them.
- Small segments are **merged** into bigger ones, size-tiered (eight adjacent
  segments of about one size become one; a smaller segment between them is
  taken along, as Lucene's LogMergePolicy does), by `merge` (a command or a
  background thread; appends merge small segments themselves).  Merges drop
  removed media.  The merged-away files are deleted right after the manifest
  swap: on Linux a file that is unlinked while a reader has it mapped stays
  readable until that reader unmaps it (its disk space is freed then), so no
  reader is cut off; a reader that read the old manifest but had not yet
  opened the file re-reads the manifest.

The search is exact multi-index hashing, as in `MultiIndexHashIndex`, with two
changes for large stores of real pHashes.  Bands are *interleaved* (bit j goes
to band j mod 3): a pHash's bits are its 8x8 low DCT frequencies row by row, so
contiguous bands put the lowest, most shared frequencies of dark, flat and
talking-head frames in one band whose buckets hold a large share of the store;
interleaved bands mix low and high frequencies.  And each segment's bucket table
uses only as many of a band's bits as its size calls for (about
`BUCKET_ROWS` rows a bucket): three bands of 21-22 bits give a segment of
3x10^7 rows (the largest merges make) buckets of 8-16 rows, where four bands of
16 bits would give 500.  The
pigeonhole argument of multi-index hashing holds for any subset of a band's
bits, so every stored hash within the distance is still found.
Figures are in docs/benchmarks.md ("Segmented on-disk index").
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import itertools
import json
import math
import mmap
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .index import (IndexHits, _band_layout, _band_radii, _brute_force, _empty_hits, _probe_masks, _probe_runs,
                    _within, probe_cap)

FORMAT = 1
DEFAULT_BANDS = 3
LAYOUTS = ("interleaved", "contiguous")
BUCKET_ROWS = 4  # rows per bucket a segment's table aims at; fewer means more bucket lookups
MIN_KEY_BITS = 6
MANIFEST = "manifest.json"
LOCK = "lock"
SEGMENT_GLOB = "seg-*"
_MAGIC = b"PVSEG001"
_END_MAGIC = b"PVSEGEND"
_PREFIX = struct.Struct("<8sII")  # magic, header length, header crc32
_FOOTER = struct.Struct("<8sIQ")  # magic, header crc32, file size
_ALIGN = 64
_OPEN_RETRIES = 5


class IndexCorrupt(Exception):
    """The files on disk do not make a valid index; rebuild it (`SegmentedHashIndex.rebuild`)."""


# --- bit layout -------------------------------------------------------------------------------


@functools.cache
def band_bits(bands: int, layout: str) -> tuple[tuple[int, ...], ...]:
    """Hash bits of each band, listed from the band value's least significant position up.

    A segment whose table uses only k of a band's bits keys it on the last k
    listed.  "interleaved" lists bit 63 (pHash's DC term, always set) first in
    its band, so it is the first bit a narrow table leaves out.
    """
    if layout == "interleaved":
        return tuple(tuple(j for j in range(63, -1, -1) if (63 - j) % bands == b) for b in range(bands))
    if layout == "contiguous":
        return tuple(tuple(range(shift, shift + width)) for shift, width in _band_layout(bands))
    raise ValueError(f"unknown band layout {layout!r}: use one of {', '.join(LAYOUTS)}")


@functools.cache
def _key_table(bands: int, layout: str, band: int, key_bits: int) -> np.ndarray:
    """(8, 256) table: the key bits contributed by each byte value of each byte of a hash."""
    bits = band_bits(bands, layout)[band]
    drop = len(bits) - key_bits
    table = np.zeros((8, 256), dtype=np.uint32)
    values = np.arange(256)
    for position, bit in enumerate(bits):
        if position >= drop:
            byte, within = divmod(bit, 8)
            table[byte] |= (((values >> within) & 1) << (position - drop)).astype(np.uint32)
    return table


def band_keys(hashes: np.ndarray, bands: int, layout: str, band: int, key_bits: int) -> np.ndarray:
    """The `key_bits`-bit bucket key of each hash in `band` (uint32).  XOR-linear: key(a ^ b) = key(a) ^ key(b)."""
    table = _key_table(bands, layout, band, key_bits)
    as_bytes = np.ascontiguousarray(hashes, dtype="<u8").view(np.uint8).reshape(-1, 8)  # byte 0 least significant
    out = np.zeros(len(hashes), dtype=np.uint32)
    for byte in range(8):
        if table[byte].any():
            out |= table[byte][as_bytes[:, byte]]
    return out


def key_bits_for(rows: int, width: int, bucket_rows: int = BUCKET_ROWS) -> int:
    """Table width for a segment of `rows`: about `bucket_rows` rows a bucket, within [MIN_KEY_BITS, width]."""
    wanted = math.ceil(math.log2(max(rows, 1) / bucket_rows)) if rows > bucket_rows else 0
    return max(min(MIN_KEY_BITS, width), min(width, wanted))


def _stable_argsort(keys: np.ndarray, bits: int) -> np.ndarray:
    """argsort of uint32 keys, stable, by 16-bit radix passes (numpy radix-sorts 16-bit values)."""
    order = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    if bits > 16:
        order = order[np.argsort((keys[order] >> 16).astype(np.uint16), kind="stable")]
    return order


# --- segment files ----------------------------------------------------------------------------


def _crc(array: np.ndarray) -> int:
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _segment_name(segment_id: int) -> str:
    return f"seg-{segment_id:09d}.seg"


def write_segment(directory: Path, segment_id: int, media: np.ndarray, times: np.ndarray, hashes: np.ndarray,
                  row_range: tuple[int, int] | None, bands: int, layout: str,
                  bucket_rows: int = BUCKET_ROWS) -> dict:
    """Write one segment file (rows already grouped by media) durably; returns its manifest entry.

    The file is written under a temporary name, fsynced and renamed; it is live
    only once a manifest lists it.
    """
    n = len(hashes)
    if n >= 2**31:
        raise ValueError(f"a segment holds fewer than 2^31 rows, not {n:,}")
    bounds = np.flatnonzero(media[1:] != media[:-1]) + 1 if n else np.zeros(0, dtype=np.int64)
    media_ids = media[np.concatenate([[0], bounds])] if n else np.zeros(0, dtype=np.int64)
    if len(media_ids) > 1 and not (media_ids[1:] > media_ids[:-1]).all():
        raise ValueError("segment rows must be grouped by media in increasing media id")
    starts = np.concatenate([[0], bounds, [n]]).astype(np.int64)
    widths = [len(b) for b in band_bits(bands, layout)]
    key_bits = [key_bits_for(n, w, bucket_rows) for w in widths]
    specs: list[tuple[str, np.dtype, int]] = [("hashes", np.dtype(np.uint64), n), ("times", np.dtype(np.float64), n),
                                              ("media", np.dtype(np.int64), len(media_ids)),
                                              ("starts", np.dtype(np.int64), len(starts))]
    for b, k in enumerate(key_bits):
        specs += [(f"offsets{b}", np.dtype(np.uint32), (1 << k) + 1), (f"rows{b}", np.dtype(np.int32), n),
                  (f"bucket_hashes{b}", np.dtype(np.uint64), n)]
    layout_of: dict[str, dict] = {}
    at = 0
    for name, dtype, count in specs:
        layout_of[name] = {"dtype": dtype.str, "count": int(count), "offset": at}
        at = -(-(at + dtype.itemsize * count) // _ALIGN) * _ALIGN
    data_bytes = at
    header = {"format": FORMAT, "segment": segment_id, "rows": n, "media": len(media_ids), "bands": bands,
              "layout": layout, "key_bits": key_bits, "row_range": list(row_range) if row_range else None,
              "arrays": layout_of}
    # The header is written last (it carries the crc of every array), into the pages reserved for it.
    reserve = 4096 * (1 + (len(json.dumps(header)) + 64 * len(specs) + 512) // 4096)
    header["data_offset"] = reserve
    size = reserve + data_bytes + _FOOTER.size
    final = directory / _segment_name(segment_id)
    temp = directory / f"{final.name}.tmp-{os.getpid()}"
    fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)

        def put(name: str, values: np.ndarray) -> None:
            """Write one array in place (pwrite, not a mapping: the pages stay out of this process's RSS)."""
            spec = layout_of[name]
            values = np.ascontiguousarray(values, dtype=spec["dtype"])
            assert len(values) == spec["count"]
            spec["crc"] = _crc(values)
            view, at = memoryview(values).cast("B"), reserve + spec["offset"]
            while len(view):
                written = os.pwrite(fd, view[:1 << 28], at)
                view, at = view[written:], at + written

        put("hashes", hashes)
        put("times", times)
        put("media", media_ids)
        put("starts", starts)
        for b, k in enumerate(key_bits):
            keys = band_keys(hashes, bands, layout, b, k)
            order = _stable_argsort(keys, k)
            put(f"offsets{b}", np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=1 << k))]))
            del keys
            put(f"rows{b}", order)
            put(f"bucket_hashes{b}", hashes[order])
            del order
        blob = json.dumps(header).encode()
        if _PREFIX.size + len(blob) > reserve:
            raise AssertionError("segment header outgrew its reserved space")
        crc = zlib.crc32(blob)
        os.pwrite(fd, _PREFIX.pack(_MAGIC, len(blob), crc) + blob, 0)
        os.pwrite(fd, _FOOTER.pack(_END_MAGIC, crc, size), size - _FOOTER.size)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(temp, final)
    return {"id": segment_id, "file": final.name, "rows": n, "bytes": size, "header_crc": crc,
            "row_range": list(row_range) if row_range else None,
            "media_range": [int(media_ids[0]), int(media_ids[-1])] if n else None}


class _Segment:
    """One segment file, memory-mapped; checked against its manifest entry when opened."""

    def __init__(self, directory: Path, entry: dict) -> None:
        path = directory / entry["file"]
        fd = os.open(path, os.O_RDONLY)  # FileNotFoundError: the caller re-reads the manifest
        try:
            size = os.fstat(fd).st_size
            if size != entry["bytes"] or size < _PREFIX.size + _FOOTER.size:
                raise IndexCorrupt(f"{path}: {size:,} bytes, the manifest says {entry['bytes']:,}")
            magic, length, crc = _PREFIX.unpack(os.pread(fd, _PREFIX.size, 0))
            blob = os.pread(fd, length, _PREFIX.size) if magic == _MAGIC and length < size else b""
            end_magic, end_crc, end_size = _FOOTER.unpack(os.pread(fd, _FOOTER.size, size - _FOOTER.size))
            if (magic != _MAGIC or zlib.crc32(blob) != crc or crc != entry["header_crc"] or end_magic != _END_MAGIC
                    or end_crc != crc or end_size != size):
                raise IndexCorrupt(f"{path}: header or footer does not match the manifest")
            self.region = mmap.mmap(fd, size, prot=mmap.PROT_READ)
        finally:
            os.close(fd)
        header = json.loads(blob)
        if header["segment"] != entry["id"] or header["rows"] != entry["rows"] or header["format"] != FORMAT:
            raise IndexCorrupt(f"{path}: the header describes segment {header['segment']}, not {entry['id']}")
        self.path = path
        self.id = entry["id"]
        self.header_crc = crc
        self.rows: int = header["rows"]
        self.bands: int = header["bands"]
        self.layout: str = header["layout"]
        self.key_bits: list[int] = header["key_bits"]
        self.specs: dict[str, dict] = header["arrays"]
        self.base: int = header["data_offset"]
        end = max((spec["offset"] + np.dtype(spec["dtype"]).itemsize * spec["count"]
                   for spec in self.specs.values()), default=0)
        if self.base + end > size - _FOOTER.size:
            raise IndexCorrupt(f"{path}: its arrays run past the end of the file")
        self.hashes = self.array("hashes")
        self.times = self.array("times")
        self.media = self.array("media")
        self.starts = self.array("starts")
        self.offsets = [self.array(f"offsets{b}") for b in range(self.bands)]
        self.band_rows = [self.array(f"rows{b}") for b in range(self.bands)]
        self.bucket_hashes = [self.array(f"bucket_hashes{b}") for b in range(self.bands)]

    def array(self, name: str) -> np.ndarray:
        spec = self.specs[name]
        return np.frombuffer(self.region, dtype=spec["dtype"], count=spec["count"], offset=self.base + spec["offset"])

    def verify(self) -> list[str]:
        """Every array's crc32 (reads the whole file)."""
        return [f"{self.path.name}: {name} fails its checksum" for name, spec in self.specs.items()
                if _crc(self.array(name)) != spec["crc"]]

    def media_of(self, rows: np.ndarray) -> np.ndarray:
        return self.media[np.searchsorted(self.starts, rows, side="right") - 1]

    def ranges_of(self, media_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, end) row ranges of those of `media_ids` (sorted) stored here."""
        at = np.searchsorted(self.media, media_ids)
        found = at < len(self.media)
        found[found] = self.media[at[found]] == media_ids[found]
        at = at[found]
        return self.starts[at], self.starts[at + 1]

    def radii(self, max_distance: int, probe_radius: int | None) -> list[int]:
        radii = _band_radii(self.bands, max_distance)
        return radii if probe_radius is None else [min(r, probe_radius) for r in radii]

    def probe_cost(self, radii: list[int]) -> int:
        return sum(len(_probe_masks(k, r)) for k, r in zip(self.key_bits, radii) if r >= 0)

    def search(self, query: np.ndarray, max_distance: int,
               probe_radius: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(query index, row, distance) of every stored hash within `max_distance`, unordered
        (with `probe_radius`, of those within it on some band's key)."""
        if not self.rows:
            return _no_pairs()
        radii = self.radii(max_distance, probe_radius)
        if self.probe_cost(radii) * 4 >= self.rows:
            return _brute_force(query, self.hashes, max_distance)
        parts = []
        for band, radius in enumerate(radii):
            if radius < 0:
                continue
            masks = _probe_masks(self.key_bits[band], radius)
            keys = band_keys(query, self.bands, self.layout, band, self.key_bits[band]).astype(np.int64)
            for s, n, o in _probe_runs(keys, masks, self.offsets[band]):
                parts.append(self._check(band, radii, query, s, n, o, max_distance))
        if not parts:
            return _no_pairs()
        return tuple(np.concatenate([p[i] for p in parts]) for i in range(3))  # type: ignore[return-value]

    def _check(self, band: int, radii: list[int], query: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
               owners: np.ndarray, max_distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Exact distances of one run of candidates; a pair is kept by the first band whose probes reach it."""
        positions, xor, qi = _within(self.bucket_hashes[band], query, starts, lengths, owners, max_distance)
        for earlier in range(band):
            if radii[earlier] >= 0:
                key = band_keys(xor, self.bands, self.layout, earlier, self.key_bits[earlier])
                new = np.bitwise_count(key) > radii[earlier]
                positions, qi, xor = positions[new], qi[new], xor[new]
        return (qi.astype(np.int64), self.band_rows[band][positions].astype(np.int64),
                np.bitwise_count(xor).astype(np.int16))


def _no_pairs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int16)


# --- the index --------------------------------------------------------------------------------


def _columns(media_ids: np.ndarray, timestamps: np.ndarray, hashes: np.ndarray,
             row_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Validated 1-D columns: (media int64, times float64, hashes uint64, row ids int64 or None)."""
    raw = np.asarray(hashes)
    if raw.ndim != 1 or (raw.dtype.kind not in "iu" and len(raw)):
        raise ValueError(f"hashes must be a 1-D array of 64-bit integers, not {raw.dtype} of shape {raw.shape}")
    if raw.dtype == np.int64:
        hashes = raw.view(np.uint64)  # the database's signed storage, bit for bit
    elif raw.dtype.kind == "i" and len(raw) and raw.min() < 0:
        raise ValueError("negative hashes are only accepted as int64 (two's complement of a 64-bit hash)")
    else:
        hashes = raw.astype(np.uint64)
    media = np.asarray(media_ids)
    times = np.asarray(timestamps, dtype=np.float64)
    rows = None if row_ids is None else np.asarray(row_ids)
    for name, column in (("media_ids", media), ("timestamps", times), ("row_ids", rows)):
        if column is not None and (column.ndim != 1 or len(column) != len(hashes)):
            raise ValueError(f"{name} must be 1-D with one value per hash ({len(hashes)}), not shape {column.shape}")
    for name, column in (("media_ids", media), ("row_ids", rows)):
        if column is not None and len(column) and column.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integers, not {column.dtype}")
    return (media.astype(np.int64), times, hashes, None if rows is None else rows.astype(np.int64))


def _by_media(media: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """The columns with rows grouped by media (increasing id), keeping each media's rows in order."""
    if len(media) < 2 or (media[1:] >= media[:-1]).all():
        return (media, *columns)
    order = np.argsort(media, kind="stable")
    return (media[order], *(c[order] for c in columns))


def _expand(inverse: np.ndarray, distinct: int, qi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit, query position) pairs: a hit on a distinct hash becomes one per query position holding it."""
    order = np.argsort(inverse, kind="stable")
    counts = np.bincount(inverse, minlength=distinct)
    first = np.cumsum(counts) - counts
    per_hit = counts[qi]
    which = np.repeat(np.arange(len(qi)), per_hit)
    nth = np.arange(len(which)) - np.repeat(np.cumsum(per_hit) - per_hit, per_hit)
    return which, order[first[qi[which]] + nth].astype(np.int64)


def _ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The row numbers of the ranges [start, end), end to end."""
    lengths = ends - starts
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    return np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)


def _in_ranges(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Which rows fall in one of the sorted, disjoint ranges [start, end)."""
    at = np.searchsorted(starts, rows, side="right") - 1
    return (at >= 0) & (rows < ends[np.maximum(at, 0)])


@dataclass(frozen=True)
class _View:
    """One reading of the manifest with its segments mapped; never changed, so a query sees one state."""

    manifest: dict
    segments: tuple[_Segment, ...]
    dead: tuple[tuple[np.ndarray, np.ndarray], ...]  # per segment: rows of removed media, as (starts, ends)
    stamp: tuple | None  # the manifest file's identity when read

    @property
    def live_rows(self) -> int:
        return sum(s.rows for s in self.segments) - sum(int((e - s).sum()) for s, e in self.dead)

    @functools.cached_property
    def first_rows(self) -> np.ndarray:
        """Each segment's first row in the order of all rows, segment after segment."""
        return np.concatenate([[0], np.cumsum([s.rows for s in self.segments])]).astype(np.int64)

    @functools.cached_property
    def media_rise(self) -> bool:
        """Whether media ids never fall from one segment to the next (appends from the frames table)."""
        ranges = [e.get("media_range") for e in self.manifest["segments"]]
        return all(ranges) and all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))


def _dead_ranges(segment: _Segment, tombstones: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of `segment` hidden by tombstones: [media, bound] hides the media in segments older than bound."""
    removed = np.unique(np.array([m for m, bound in tombstones if segment.id < bound], dtype=np.int64))
    return segment.ranges_of(removed)


class SegmentedHashIndex:
    """Exact Hamming search over memory-mapped segment files in `directory` (see the module docstring).

    Hits are those of `BruteForceIndex` over the live rows, ordered by query
    position, then media id, then the order the media's rows were stored in
    (BruteForceIndex's order when media are stored in increasing id, as the
    frames table hands them out).

    `bands` and `layout` are fixed when the directory is first written (and
    by `rebuild`); opening an existing index uses its manifest's.  Appends
    write a segment each; `segment_rows` is the segment size `rebuild` writes;
    merges join `merge_factor` adjacent segments of one size class, up to
    `max_segment_rows`; appends run the merges up to `auto_merge_rows` rows
    themselves and leave bigger ones to `merge`.

    Queries are safe from several threads; `refresh` swaps the view a query
    started with for a new one, never changing it under the query.

    Example::

        index = SegmentedHashIndex.open(data_dir / "index" / "phash64" / settings_key)
        index.refresh()  # see what other processes appended
        if index.high_water_mark < newest_frame_id:
            index.append(row_ids, media_ids, timestamps, hashes)  # rows above the mark, from SQL
        hits = index.query(query_hashes, 8)
    """

    def __init__(self, directory: Path | str, *, bands: int = DEFAULT_BANDS, layout: str = "interleaved",
                 segment_rows: int = 1 << 22, merge_factor: int = 8, max_segment_rows: int = 1 << 25,
                 auto_merge_rows: int = 1 << 20, bucket_rows: int = BUCKET_ROWS, _load: bool = True) -> None:
        band_bits(bands, layout)  # a clear error for an unknown layout
        if merge_factor < 2 or segment_rows < 1 or max_segment_rows < segment_rows:
            raise ValueError("need merge_factor >= 2 and 1 <= segment_rows <= max_segment_rows")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._bands, self._layout = bands, layout
        self.segment_rows, self.merge_factor = segment_rows, merge_factor
        self.max_segment_rows, self.auto_merge_rows, self.bucket_rows = max_segment_rows, auto_merge_rows, bucket_rows
        self._opened: dict[int, _Segment] = {}  # segments a writer opened outside the view
        self._writer = threading.Lock()  # one writer of this instance at a time (flock orders processes)
        self._view = self._read_view(None) if _load else _View(self._new_manifest(), (), (), None)

    @classmethod
    def open(cls, directory: Path | str, **options) -> SegmentedHashIndex:
        """Open (or start) the index in `directory`: reads the manifest and maps the segments, nothing more.

        Raises `IndexCorrupt` when a listed segment is missing or does not match the manifest.
        """
        return cls(directory, **options)

    @classmethod
    def build(cls, directory: Path | str, chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
              **options) -> SegmentedHashIndex:
        """A new index in `directory` from `chunks` (see `rebuild`), replacing what is there, even a corrupt index."""
        index = cls(directory, _load=False, **options)
        index.rebuild(chunks)
        return index

    # --- reading the manifest --------------------------------------------------------------

    def _read_manifest(self) -> tuple[dict | None, tuple | None]:
        path = self.directory / MANIFEST
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                blob = f.read()
        except FileNotFoundError:
            return None, None
        try:
            manifest = json.loads(blob)
        except ValueError as error:
            raise IndexCorrupt(f"{path} is not valid JSON ({error}); rebuild the index") from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise IndexCorrupt(f"{path} is not a format-{FORMAT} manifest; rebuild the index")
        return manifest, (st.st_ino, st.st_mtime_ns, st.st_size)

    def _new_manifest(self) -> dict:
        return {"format": FORMAT, "bands": self._bands, "layout": self._layout, "generation": 0,
                "next_segment": 1, "high_water_mark": -1, "segments": [], "tombstones": []}

    def _view_of(self, manifest: dict, stamp: tuple | None, previous: _View | None) -> _View:
        mapped = {(s.id, s.header_crc): s for s in previous.segments} if previous else {}
        segments = tuple(mapped.get((e["id"], e["header_crc"])) or _Segment(self.directory, e)
                         for e in manifest["segments"])
        return _View(manifest, segments, tuple(_dead_ranges(s, manifest["tombstones"]) for s in segments), stamp)

    def _segment(self, entry: dict) -> _Segment:
        """A segment for a writer: the view's, or one the writer maps itself."""
        for segment in self._view.segments:
            if segment.id == entry["id"] and segment.header_crc == entry["header_crc"]:
                return segment
        if entry["id"] not in self._opened:
            self._opened[entry["id"]] = _Segment(self.directory, entry)
        return self._opened[entry["id"]]

    def _read_view(self, previous: _View | None) -> _View:
        for attempt in range(_OPEN_RETRIES):
            manifest, stamp = self._read_manifest()
            if manifest is None:
                return _View(self._new_manifest(), (), (), None)
            try:
                return self._view_of(manifest, stamp, previous)
            except FileNotFoundError as error:
                # a merge retired the file after we read the manifest: read the new one
                if attempt == _OPEN_RETRIES - 1 or self._read_manifest()[1] == stamp:
                    raise IndexCorrupt(f"{error.filename} is listed in the manifest but missing; "
                                       "rebuild the index") from None
        raise AssertionError("unreachable")

    def refresh(self) -> bool:
        """Re-read the manifest if another process published since; True when the view changed."""
        try:
            st = os.stat(self.directory / MANIFEST)
        except FileNotFoundError:
            return False
        if (st.st_ino, st.st_mtime_ns, st.st_size) == self._view.stamp:
            return False
        self._view = self._read_view(self._view)
        return True

    def close(self) -> None:
        """Drop the mapped segments (their files' space is freed once no process maps them)."""
        self._view = _View(self._new_manifest(), (), (), None)

    # --- reading -----------------------------------------------------------------------------

    @property
    def high_water_mark(self) -> int:
        """The largest source row id appended; -1 for none."""
        return int(self._view.manifest["high_water_mark"])

    @property
    def bands(self) -> int:
        return int(self._view.manifest["bands"])

    @property
    def layout(self) -> str:
        return str(self._view.manifest["layout"])

    def __len__(self) -> int:
        return self._view.live_rows

    def segment_sizes(self) -> list[int]:
        """Rows of each live segment, oldest first."""
        return [s.rows for s in self._view.segments]

    def disk_bytes(self) -> int:
        """Bytes of the live segment files (what a query may map)."""
        return sum(e["bytes"] for e in self._view.manifest["segments"])

    def media_ids(self) -> set[int]:
        """Every media with live rows; reads each segment's media list (not needed to query)."""
        out: set[int] = set()
        for segment, (starts, _) in zip(self._view.segments, self._view.dead):
            media = segment.media
            if len(starts):
                media = media[~np.isin(segment.starts[:-1], starts)]
            out.update(media.tolist())
        return out

    def query(self, hashes: np.ndarray, max_distance: int, complete_to: int | None = None,
              probe_radius: int | None = None) -> IndexHits:
        """Every live stored hash within `max_distance` bits of each query hash.

        `probe_radius` caps the bits looked up around the query on each band
        (the exact search needs about ``max_distance // bands``): fewer lookups,
        but a pair further apart than that on every band's key may be missed;
        the pairs returned have their exact distances.  `complete_to` sets the
        cap that still finds every pair within that many bits (`probe_cap`):
        the crowd test's wide lookup (`fingerprints.align._crowd_lookup`).
        Recall: docs/benchmarks.md.
        """
        cap = probe_cap(self.bands, max_distance, complete_to)
        if cap is not None:
            probe_radius = cap if probe_radius is None else min(probe_radius, cap)
        view = self._view
        query = np.asarray(hashes, dtype=np.uint64)
        if not len(query) or max_distance < 0 or not view.segments:
            return _empty_hits()
        # frames of one video often repeat a hash: look each distinct hash up once
        distinct, inverse = np.unique(query, return_inverse=True)
        found = []
        for rank, (segment, (dead_starts, dead_ends)) in enumerate(zip(view.segments, view.dead)):
            qi, rows, dist = segment.search(distinct, max_distance, probe_radius)
            if len(dead_starts) and len(rows):
                live = ~_in_ranges(rows, dead_starts, dead_ends)
                qi, rows, dist = qi[live], rows[live], dist[live]
            if len(rows):
                found.append((qi, rows, dist, segment, rank))
        if not found:
            return _empty_hits()
        qi = np.concatenate([f[0] for f in found])
        which, positions = _expand(inverse, len(distinct), qi)
        return self._ordered(view, found, which, positions)

    @staticmethod
    def _ordered(view: _View, found: list, which: np.ndarray, positions: np.ndarray,
                 by_position: bool = False) -> IndexHits:
        """Hits in (query position, media, segment, row) order.

        `found` holds per segment (query index, row, distance, segment, rank[, media]); `which` picks the
        hit of each query position.  `by_position`: each segment's hits are in (position, row)
        order already, as `_brute_force` returns them.
        """
        rows = np.concatenate([f[1] for f in found])
        dist = np.concatenate([f[2] for f in found])
        media = np.concatenate([f[3].media_of(f[1]) if len(f) < 6 else f[5] for f in found])
        times = np.concatenate([f[3].times[f[1]] for f in found])
        total = int(view.first_rows[-1])
        if by_position and len(found) == 1:
            order = np.arange(len(which))  # rows of a segment are in media order
        elif view.media_rise and (int(positions.max()) + 1) * total < 2**62:
            # media rise with the rows: (position, media, segment, row) is (position, row of all rows)
            everywhere = np.concatenate([view.first_rows[f[4]] + f[1] for f in found])
            order = np.argsort(positions * total + everywhere[which], kind="stable")
        else:
            rank = np.concatenate([np.full(len(f[1]), f[4]) for f in found])
            order = np.lexsort((rows[which], rank[which], media[which], positions))
        hit = which[order]
        return IndexHits(positions[order], media[hit], times[hit], dist[hit].astype(np.int16))

    def query_media(self, hashes: np.ndarray, max_distance: int, media_ids: set[int]) -> IndexHits:
        """`query`'s hits of the given media only, comparing the query with those media's rows alone.

        Each segment maps a media to its row range, so the cost grows with the
        rows of `media_ids`, not with the store.
        """
        view = self._view
        query = np.asarray(hashes, dtype=np.uint64)
        ids = np.unique(np.fromiter(media_ids, dtype=np.int64))
        if not len(query) or max_distance < 0 or not len(ids):
            return _empty_hits()
        found = []
        for rank, (segment, (dead_starts, _)) in enumerate(zip(view.segments, view.dead)):
            starts, ends = segment.ranges_of(ids)
            if len(dead_starts) and len(starts):
                live = ~np.isin(starts, dead_starts)
                starts, ends = starts[live], ends[live]
            rows = _ranges(starts, ends)
            if not len(rows):
                continue
            qi, picked, dist = _brute_force(query, segment.hashes[rows], max_distance)
            if len(qi):
                media = np.repeat(segment.media_of(starts), ends - starts)
                found.append((qi, rows[picked], dist, segment, rank, media[picked]))
        if not found:
            return _empty_hits()
        positions = np.concatenate([f[0] for f in found])
        return self._ordered(view, found, np.arange(len(positions)), positions, by_position=True)

    def serialize(self) -> bytes:
        raise NotImplementedError(f"a SegmentedHashIndex lives in {self.directory}: copy the directory, or "
                                  "rebuild it from the database")

    def check(self, expected_rows: int | None = None, expected_mark: int | None = None,
              deep: bool = False) -> list[str]:
        """What is wrong with the index on disk, against the database's figures; empty when nothing is.

        Checks that the manifest reads, that every listed segment exists with
        the size, header and footer the manifest records, and, when given, the
        live row count and the high-water mark.  `deep` also checksums every
        array (reads every file: seconds at 10^7 rows).  A caller rebuilds when
        the list is not empty.
        """
        try:
            view = self._read_view(None)
        except IndexCorrupt as error:
            return [str(error)]
        problems = [p for s in view.segments for p in s.verify()] if deep else []
        if expected_rows is not None and view.live_rows != expected_rows:
            problems.append(f"the index holds {view.live_rows:,} rows, the database {expected_rows:,}")
        mark = view.manifest["high_water_mark"]
        if expected_mark is not None and mark != expected_mark:
            problems.append(f"the index covers rows up to id {mark}, the database up to {expected_mark}")
        return problems

    # --- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self, replacing: bool = False) -> Iterator[dict]:
        """The current manifest, under the directory's writer lock, with leftovers of dead writers removed.

        `replacing` (a rebuild) starts from an empty manifest when the current one is unreadable.
        """
        self._writer.acquire()
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                manifest = self._read_manifest()[0] or self._new_manifest()
            except IndexCorrupt:
                if not replacing:
                    raise
                manifest = self._new_manifest()
                numbers = [int(p.name[4:13]) for p in self.directory.glob(SEGMENT_GLOB) if p.name[4:13].isdigit()]
                manifest["next_segment"] = max(numbers, default=0) + 1
            listed = {e["file"] for e in manifest["segments"]}
            for path in self.directory.glob(SEGMENT_GLOB):
                if path.name not in listed:  # a temporary file, or one a crashed writer wrote or retired
                    path.unlink(missing_ok=True)
            for path in self.directory.glob(f"{MANIFEST}.tmp-*"):
                path.unlink(missing_ok=True)
            yield manifest
        finally:
            self._opened.clear()
            os.close(fd)  # releases the lock
            self._writer.release()

    def _publish(self, manifest: dict, retired: list[str]) -> None:
        """Atomically replace the manifest, then delete the files it no longer lists."""
        manifest["generation"] += 1
        temp = self.directory / f"{MANIFEST}.tmp-{os.getpid()}"
        with open(temp, "w") as f:
            json.dump(manifest, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, self.directory / MANIFEST)
        _fsync_dir(self.directory)
        for name in retired:
            (self.directory / name).unlink(missing_ok=True)  # readers that map it keep reading it
        self._view = self._read_view(self._view)

    def _write(self, manifest: dict, media: np.ndarray, times: np.ndarray, hashes: np.ndarray,
               row_range: tuple[int, int] | None) -> dict:
        segment_id = manifest["next_segment"]
        manifest["next_segment"] += 1
        entry = write_segment(self.directory, segment_id, media, times, hashes, row_range, manifest["bands"],
                              manifest["layout"], self.bucket_rows)
        _fsync_dir(self.directory)
        return entry

    def append(self, row_ids: np.ndarray, media_ids: np.ndarray, timestamps: np.ndarray,
               hashes: np.ndarray, covered: int | None = None) -> int:
        """Store a batch of frame rows keyed by their source row ids; returns the rows stored.

        Rows at or below the high-water mark are skipped (another process
        stored them already), so every process may catch up from the same
        source concurrently; the mark becomes the largest row id, or
        `covered` if larger: the source rows up to `covered` were all read,
        those without a hash for this index included.  An index of a column
        that few rows have (the still shots' motion hashes) would otherwise
        read every row since its last one again at each catch-up.
        """
        media, times, hashes, rows = _columns(media_ids, timestamps, hashes, row_ids)
        with self._writing() as manifest:
            keep = rows > manifest["high_water_mark"]
            mark = max(int(rows.max()) if len(rows) else -1, -1 if covered is None else int(covered))
            if not keep.any():
                if mark > manifest["high_water_mark"]:
                    manifest["high_water_mark"] = mark
                    self._publish(manifest, [])
                else:
                    self._view = self._read_view(self._view)
                return 0
            media, times, hashes, rows = _by_media(media[keep], times[keep], hashes[keep], rows[keep])
            manifest["segments"].append(self._write(manifest, media, times, hashes,
                                                    (int(rows.min()), int(rows.max()))))
            manifest["high_water_mark"] = max(mark, manifest["high_water_mark"])
            self._publish(manifest, self._merge_runs(manifest, self.auto_merge_rows))
        return len(rows)

    def add(self, media_id: int, timestamps: np.ndarray, hashes: np.ndarray) -> None:
        """Store one media's frames with no source row ids: the high-water mark does not move."""
        times = np.asarray(timestamps, dtype=np.float64)
        media, times, hashes, _ = _columns(np.full(len(times), media_id, dtype=np.int64), times, hashes)
        if not len(hashes):
            return
        with self._writing() as manifest:
            manifest["segments"].append(self._write(manifest, media, times, hashes, None))
            self._publish(manifest, self._merge_runs(manifest, self.auto_merge_rows))

    def remove(self, media_id: int) -> None:
        """Hide a media's rows (a tombstone in the manifest); merges drop them."""
        with self._writing() as manifest:
            bound = manifest["next_segment"]
            target = np.array([media_id], dtype=np.int64)
            if any(len(self._segment(e).ranges_of(target)[0]) for e in manifest["segments"]):
                manifest["tombstones"] = [t for t in manifest["tombstones"] if t[0] != media_id] + [[media_id, bound]]
                self._publish(manifest, self._merge_runs(manifest, self.auto_merge_rows))
            else:
                self._view = self._read_view(self._view)

    def merge(self, full: bool = False, max_segments: int | None = None) -> int:
        """Run the size-tiered merges that are due (with `full`, merge adjacent segments as far as
        `max_segment_rows` allows); then, if more than `max_segments` segments are left, merge the newest
        into one, as few as bring the count down to `max_segments` (the newest are the smallest; a run
        over the size cap starts later).  Returns the segments merged away.  Safe to call from a thread
        or another process while others read and append."""
        with self._writing() as manifest:
            retired = self._merge_runs(manifest, None, full)
            keep = None if max_segments is None else max(max_segments, 1)
            if keep is not None and len(manifest["segments"]) > keep:
                live = self._live_rows(manifest)
                start = keep - 1
                while start < len(live) - 1 and sum(live[start:]) > self.max_segment_rows:
                    start += 1
                if start < len(live) - 1:
                    retired += self._merge_run(manifest, start, len(live))
            if retired:
                self._publish(manifest, retired)
            else:
                self._view = self._read_view(self._view)
        return len(retired)

    def _live_rows(self, manifest: dict) -> list[int]:
        out = []
        for entry in manifest["segments"]:
            starts, ends = _dead_ranges(self._segment(entry), manifest["tombstones"])
            out.append(entry["rows"] - int((ends - starts).sum()))
        return out

    def _plan(self, manifest: dict, limit: int | None, full: bool) -> tuple[int, int] | None:
        """The next run [start, stop) of segments to merge, or None."""
        entries = manifest["segments"]
        live = self._live_rows(manifest)
        cap = self.max_segment_rows if limit is None else min(limit, self.max_segment_rows)
        for i, (entry, rows) in enumerate(zip(entries, live)):
            if rows * 4 <= entry["rows"] * 3 and (limit is None or entry["rows"] <= limit):
                return i, i + 1  # a quarter or more removed: rewrite it
        if full:
            start = 0
            while start < len(entries):
                stop, total = start, 0
                while stop < len(entries) and total + live[stop] <= cap:
                    total += live[stop]
                    stop += 1
                if stop - start >= 2:
                    return start, stop
                start = max(stop, start + 1)
            return None
        # size-tiered as Lucene's LogMergePolicy: from the oldest segment on, a group reaches to the last segment
        # within a factor merge_factor ** 0.75 of the largest left, smaller segments between included; exact size
        # classes would let one stray small segment (a short video's rows) keep its neighbours from ever merging
        levels = [math.log(max(rows, 1), self.merge_factor) for rows in live]
        start = 0
        while start < len(entries):
            bottom = max(levels[start:]) - 0.75
            stop = max(k for k in range(start, len(entries)) if levels[k] >= bottom) + 1
            for first in range(start, stop - self.merge_factor + 1, self.merge_factor):
                if sum(live[first:first + self.merge_factor]) <= cap:
                    return first, first + self.merge_factor
            start = stop
        return None

    def _merge_runs(self, manifest: dict, limit: int | None, full: bool = False) -> list[str]:
        """Merge planned runs into the manifest (unpublished); returns the files merged away."""
        retired: list[str] = []
        while (run := self._plan(manifest, limit, full)) is not None:
            retired += self._merge_run(manifest, *run)
        return retired

    def _merge_run(self, manifest: dict, start: int, stop: int) -> list[str]:
        """Merge segments [start, stop) into one in the manifest (unpublished); returns their files."""
        entries = manifest["segments"][start:stop]
        merged = self._write_merged(manifest, entries)
        manifest["segments"][start:stop] = [merged] if merged else []
        for entry in entries:
            self._opened.pop(entry["id"], None)
        manifest["tombstones"] = [
            [m, bound] for m, bound in manifest["tombstones"]
            if any(e["id"] < bound and len(self._segment(e).ranges_of(np.array([m]))[0])
                   for e in manifest["segments"])]
        return [e["file"] for e in entries]

    def _write_merged(self, manifest: dict, entries: list[dict]) -> dict | None:
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for entry in entries:
            segment = self._segment(entry)
            media = np.repeat(segment.media, np.diff(segment.starts))
            dead_starts, dead_ends = _dead_ranges(segment, manifest["tombstones"])
            if len(dead_starts):
                keep = ~_in_ranges(np.arange(segment.rows), dead_starts, dead_ends)
                parts.append((media[keep], segment.times[keep], segment.hashes[keep]))
            else:
                parts.append((media, np.array(segment.times), np.array(segment.hashes)))
        media, times, hashes = (np.concatenate([p[i] for p in parts]) for i in range(3))
        del parts
        if not len(media):
            return None
        media, times, hashes = _by_media(media, times, hashes)
        ranges = [e["row_range"] for e in entries if e["row_range"]]
        row_range = (min(r[0] for r in ranges), max(r[1] for r in ranges)) if ranges else None
        return self._write(manifest, media, times, hashes, row_range)

    def rebuild(self, chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> int:
        """Replace the whole index by the rows of `chunks`: (row_ids, media_ids, timestamps, hashes) batches,
        e.g. read from the frames table in row-id order.  Streams: holds one segment's rows at a time.
        Readers see the old index until the new one is complete.  Returns the rows stored.
        """
        with self._writing(replacing=True) as old:
            manifest = self._new_manifest()
            manifest["next_segment"], manifest["generation"] = old["next_segment"], old["generation"]
            pending: list[tuple[np.ndarray, ...]] = []
            buffered = total = 0
            mark = -1

            def flush(rows: int) -> None:
                nonlocal pending, buffered
                media, times, hashes = (np.concatenate([p[i] for p in pending]) for i in range(3))
                ids = np.concatenate([p[3] for p in pending])
                rest = (media[rows:], times[rows:], hashes[rows:], ids[rows:])
                media, times, hashes = _by_media(media[:rows], times[:rows], hashes[:rows])
                manifest["segments"].append(self._write(manifest, media, times, hashes,
                                                        (int(ids[:rows].min()), int(ids[:rows].max()))))
                pending, buffered = ([rest] if len(rest[0]) else []), len(rest[0])
                for name in self._merge_runs(manifest, None):
                    (self.directory / name).unlink()  # never published: nobody maps it

            try:
                for row_ids, media_ids, timestamps, hashes in chunks:
                    media, times, hashes, rows = _columns(media_ids, timestamps, hashes, row_ids)
                    if not len(rows):
                        continue
                    pending.append((media, times, hashes, rows))
                    buffered += len(rows)
                    total += len(rows)
                    mark = max(mark, int(rows.max()))
                    while buffered >= self.segment_rows:
                        flush(self.segment_rows)
                if buffered:
                    flush(buffered)
                for name in self._merge_runs(manifest, None, full=True):
                    (self.directory / name).unlink()
            except BaseException:
                for entry in manifest["segments"]:
                    (self.directory / entry["file"]).unlink(missing_ok=True)
                raise
            manifest["high_water_mark"] = mark
            self._publish(manifest, [e["file"] for e in old["segments"]])
        return total
