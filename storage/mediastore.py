"""The content-addressed media store: files named by their SHA-256, never by a title.

A file's name is its own hash, so a stored file can be re-verified at any time
and the same footage downloaded twice is stored once.  Nothing that came from
the outside world (titles, URLs, uploaders' file names) ever becomes part of
a path.  Files appear atomically: a crash leaves either no file or the whole,
verified file, never a partial one under the final name.

What a crash can leave is swept by `sweep`: `.incoming-*.part` copies (named
with their writer's host and pid, so a live writer's copy is never touched),
and stored files that no media row names (the file goes in before the rows
commit) once they are older than a grace period.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from storage.errors import StorageError
from storage.failpoints import failpoint
from storage.processes import file_tag, tagged_owner_alive

CHUNK_SIZE = 1 << 20
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
EXTENSION_PATTERN = re.compile(r"^[a-z0-9]{1,8}$")
MEDIA_SUBDIR = "media"
INCOMING_PREFIX = ".incoming-"


@dataclass
class SweepResult:
    """What a sweep removed (paths relative to the data dir)."""

    partial: list[str] = field(default_factory=list)  # `.part` copies of dead writers
    orphans: list[str] = field(default_factory=list)  # stored files no media row names


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()


def safe_extension(extension: str | None) -> str | None:
    """`extension` lower-cased without its dot if it is plain ASCII letters/digits, else None."""
    if not extension:
        return None
    candidate = extension.lower().removeprefix(".")
    return candidate if EXTENSION_PATTERN.match(candidate) else None


class MediaStore:
    """Media files under `<data_dir>/media/<sha[:2]>/<sha>.<ext>`."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()

    def relative_path(self, sha256: str, extension: str | None) -> str:
        """Where a file with this hash is stored, relative to the data dir (posix)."""
        if not SHA256_PATTERN.match(sha256):
            raise ValueError(f"not a lower-case hex SHA-256: {sha256!r}")
        ext = safe_extension(extension)
        name = f"{sha256}.{ext}" if ext else sha256
        return str(PurePosixPath(MEDIA_SUBDIR, sha256[:2], name))

    def path(self, rel: str) -> Path:
        """The absolute path of a stored file; refuses paths that leave the data dir."""
        if not rel or PurePosixPath(rel).is_absolute() or Path(rel).is_absolute():
            raise ValueError(f"media path must be relative to the data dir, got {rel!r}")
        resolved = (self.data_dir / rel).resolve()
        if not resolved.is_relative_to(self.data_dir):
            raise ValueError(f"media path {rel!r} points outside the data dir {self.data_dir}")
        return resolved

    def put(self, src: Path, sha256: str, extension: str | None) -> str:
        """Copy `src` into the store and return its relative path.

        `sha256` is the caller's hash of `src`; the copy is hashed again and
        must match.  An existing file with this hash is kept as it is.
        """
        rel = self.relative_path(sha256, extension)
        target = self.path(rel)
        if target.exists():
            if target.stat().st_size != Path(src).stat().st_size:
                raise StorageError(
                    f"stored file {target} has the right name but the wrong size; the store is "
                    "damaged: move that file aside and store the media again"
                )
            os.utime(target)  # fresh again: a sweep's grace period now covers our ingest
            return rel

        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=INCOMING_PREFIX + file_tag(), suffix=".part", dir=target.parent)
        temp_path = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out, open(src, "rb") as source:
                shutil.copyfileobj(source, out, CHUNK_SIZE)
                out.flush()
                os.fsync(out.fileno())
            failpoint("store-copying")
            copied = sha256_file(temp_path)
            if copied != sha256:
                raise StorageError(
                    f"copy of {src} hashes to {copied}, expected {sha256}: the file changed "
                    "while it was being stored, or the hash given is wrong; hash it again"
                )
            os.replace(temp_path, target)
            _fsync_directory(target.parent)
        except OSError as error:
            temp_path.unlink(missing_ok=True)
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageError(
                    f"disk full while storing media {sha256} in {self.data_dir}: free some space "
                    "or point the data dir at a larger disk"
                ) from error
            raise StorageError(f"cannot store media {sha256} in {target.parent}: {error}") from error
        except BaseException:
            temp_path.unlink(missing_ok=True)
            raise
        return rel

    def sweep(self, named: Callable[[], set[str]], grace_seconds: float) -> SweepResult:
        """Remove what interrupted stores left: `.part` copies and files no media row names.

        A `.part` copy goes at once when its writer (same host) is dead, or
        when it is older than `grace_seconds`.  A stored file goes when it is
        older than `grace_seconds` and not in `named()`, which is read after
        the files are listed, so a file whose row commits meanwhile is kept;
        the grace period covers an ingest between its `put` (which refreshes
        the file's time) and its commit.
        """
        root = self.data_dir / MEDIA_SUBDIR
        result = SweepResult()
        if not root.is_dir():
            return result
        cutoff = time.time() - grace_seconds
        candidates = []
        for path in root.glob("*/*"):
            try:
                old = path.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue  # renamed or removed meanwhile
            rel = str(path.relative_to(self.data_dir).as_posix())
            if path.name.startswith(INCOMING_PREFIX):
                if tagged_owner_alive(path.name, INCOMING_PREFIX) is False or old:
                    path.unlink(missing_ok=True)
                    result.partial.append(rel)
            elif old and path.is_file():
                candidates.append((path, rel))
        if candidates:
            known = named()
            for path, rel in candidates:
                try:
                    if rel in known or path.stat().st_mtime >= cutoff:  # named, or `put` again meanwhile
                        continue
                except FileNotFoundError:
                    continue
                path.unlink(missing_ok=True)
                result.orphans.append(rel)
        return result


    def remove(self, rel: str) -> bool:
        """Delete a stored file (a deletion the database has recorded); False when it was not there."""
        target = self.path(rel)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(target.parent)
        try:
            target.parent.rmdir()  # the last file of its fan-out directory
        except OSError:
            pass
        return True


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable: the directory entry is data too."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
