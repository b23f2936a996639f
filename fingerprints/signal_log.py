"""The values of one per-video signal kind, kept on local disk for the kind's index to load from.

A `fingerprints.signals.MediaSignal` index is built in memory from the
stored values; reading every value back from the database at each process
start costs a query per batch and tens of kilobytes per video (local
features).  This file holds a copy: a process reads it once, then asks the
database only for the rows above its **high-water mark** (the largest
`media_signals` row id it has seen), as `fingerprints.segments` does for the
frame hashes.  It is derived data: the database is the source of truth, and a
damaged log (`LogCorrupt`) is rebuilt from it.

Format (``values.log``): a magic, a JSON header saying which kind and version
the file holds, then records, each ``row id, media id, length, CRC-32`` and
the value's bytes.  A record of length `_REMOVED` and no bytes is a
tombstone: the media was deleted (the log is append-only, a rebuild drops
them).  Writers take an exclusive `flock` on ``lock`` and first read what
other processes appended; readers take no lock and stop at an incomplete last
record (being written, or left by a writer that died: the next writer cuts it
off).  A rebuild writes a new file and swaps it in with `os.replace`; others
notice the new inode and reload.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

FILE = "values.log"
LOCK = "lock"
_MAGIC = b"PVSIGLOG"
_HEAD = struct.Struct("<I")
_RECORD = struct.Struct("<qqII")  # row id, media id, length, CRC-32 of the rest of the record
_REMOVED = 0xFFFFFFFF
MAX_VALUE_BYTES = 1 << 30  # a longer record is damage, not a value


class LogCorrupt(Exception):
    """The file is not a valid log of this kind; rebuild it from the database."""


# (row id, media id, value); value None: the media was removed
Entry = tuple[int, int, "bytes | None"]


def _crc(row_id: int, media_id: int, length: int, value: bytes) -> int:
    return zlib.crc32(value, zlib.crc32(struct.pack("<qqI", row_id, media_id, length)))


def _record(row_id: int, media_id: int, value: bytes | None) -> bytes:
    length = _REMOVED if value is None else len(value)
    return _RECORD.pack(row_id, media_id, length, _crc(row_id, media_id, length, value or b"")) + (value or b"")


class SignalLog:
    """One kind's log in `directory`; `sync` feeds its entries to a consumer and appends the database's new rows."""

    def __init__(self, directory: Path, kind: str, version: int) -> None:
        self.directory = Path(directory)
        self.header = {"kind": kind, "version": version}
        self.high_water_mark = 0
        self._offset = 0  # bytes of the file read so far
        self._inode: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / FILE

    def disk_bytes(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            return self.path.stat().st_size
        return 0

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _head_bytes(self) -> bytes:
        text = json.dumps(self.header, sort_keys=True).encode()
        return _MAGIC + _HEAD.pack(len(text)) + text

    def _read(self, on_reset: Callable[[], None], on_entry: Callable[[Entry], None]) -> bool:
        """Feed the entries appended since the last read (all of them after a swap); False: no file yet.

        Raises `LogCorrupt` for a wrong header or a damaged complete record.
        """
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            return False
        with f:
            inode = os.fstat(f.fileno()).st_ino
            if inode != self._inode:
                self._inode, self._offset, self.high_water_mark = inode, 0, 0
                on_reset()
                head = f.read(len(_MAGIC) + _HEAD.size)
                if len(head) < len(_MAGIC) + _HEAD.size or head[:len(_MAGIC)] != _MAGIC:
                    raise LogCorrupt(f"{self.path} is not a signal log (bad magic)")
                (size,) = _HEAD.unpack(head[len(_MAGIC):])
                try:
                    header = json.loads(f.read(size))
                except ValueError as error:
                    raise LogCorrupt(f"{self.path}: unreadable header ({error})") from None
                if header != self.header:
                    raise LogCorrupt(f"{self.path} holds {header}, not {self.header}")
                self._offset = f.tell()
            f.seek(self._offset)
            self._offset = self._read_records(f, on_entry)
        return True

    def _read_records(self, f: BinaryIO, on_entry: Callable[[Entry], None]) -> int:
        """Feed complete records from `f`'s position on; the offset after the last complete one."""
        offset = f.tell()
        while True:
            head = f.read(_RECORD.size)
            if len(head) < _RECORD.size:
                return offset
            row_id, media_id, length, crc = _RECORD.unpack(head)
            size = 0 if length == _REMOVED else length
            if size > MAX_VALUE_BYTES:
                raise LogCorrupt(f"{self.path}: a record of {size} bytes at offset {offset}")
            value = f.read(size)
            if len(value) < size:
                return offset  # being written, or cut short by a writer that died
            if _crc(row_id, media_id, length, value) != crc:
                raise LogCorrupt(f"{self.path}: checksum mismatch in the record at offset {offset}")
            on_entry((row_id, media_id, None if length == _REMOVED else value))
            self.high_water_mark = max(self.high_water_mark, row_id)
            offset += _RECORD.size + size

    def sync(self, on_reset: Callable[[], None], on_entry: Callable[[Entry], None],
             fetch: Callable[[int], Iterable[tuple[int, int, bytes]]] | None = None) -> int:
        """Feed new entries to the consumer; with `fetch(after_row_id)`, append (and feed) the rows it gives.

        Returns how many rows were appended.  A missing file is created (empty).
        """
        if fetch is None and self._read(on_reset, on_entry):
            return 0
        with self._locked():
            if not self._read(on_reset, on_entry):
                self._create(on_reset)
            if fetch is None:
                return 0
            appended = 0
            with open(self.path, "r+b") as f:
                f.truncate(self._offset)  # an incomplete record a dead writer left
                f.seek(self._offset)
                for row_id, media_id, value in fetch(self.high_water_mark):
                    f.write(_record(row_id, media_id, value))
                    on_entry((row_id, media_id, value))
                    self.high_water_mark = max(self.high_water_mark, row_id)
                    appended += 1
                f.flush()
                os.fsync(f.fileno())
                self._offset = f.tell()
            return appended

    def _create(self, on_reset: Callable[[], None]) -> None:
        self._swap_in([])
        self._read(on_reset, lambda entry: None)

    def remove(self, media_id: int, on_entry: Callable[[Entry], None]) -> None:
        """Append a tombstone for a deleted media (feeding what others appended first)."""
        with self._locked():
            if not self._read(lambda: None, on_entry):
                return  # no log: nothing to hide, the next build reads the database
            with open(self.path, "r+b") as f:
                f.truncate(self._offset)
                f.seek(self._offset)
                f.write(_record(self.high_water_mark, media_id, None))
                f.flush()
                os.fsync(f.fileno())
                self._offset = f.tell()
            on_entry((self.high_water_mark, media_id, None))

    def rebuild(self, rows: Iterable[tuple[int, int, bytes]], on_reset: Callable[[], None],
                on_entry: Callable[[Entry], None]) -> None:
        """Write the log afresh from `rows` (in row-id order) and swap it in; the consumer is fed from scratch."""
        with self._locked():
            self._swap_in(rows)
            self._inode = None
            self._read(on_reset, on_entry)

    def _swap_in(self, rows: Iterable[tuple[int, int, bytes]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f"{FILE}.{os.getpid()}.tmp"
        with open(temporary, "wb") as f:
            f.write(self._head_bytes())
            for row_id, media_id, value in rows:
                f.write(_record(row_id, media_id, value))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, self.path)


def remove_from_logs(directories: Iterable[Path], media_id: int) -> None:
    """Hide a deleted media in logs of kinds or settings no longer in use (their headers are kept as found)."""
    for directory in directories:
        try:
            with open(Path(directory) / FILE, "rb") as f:
                head = f.read(len(_MAGIC) + _HEAD.size)
                (size,) = _HEAD.unpack(head[len(_MAGIC):])
                header = json.loads(f.read(size))
            log = SignalLog(directory, header["kind"], header["version"])
            log.remove(media_id, lambda entry: None)
        except (OSError, ValueError, KeyError, struct.error, LogCorrupt):
            # unreadable: delete it, so no deleted media can come back from it; it is rebuilt when next used
            with contextlib.suppress(OSError):
                (Path(directory) / FILE).unlink()
