"""Evidence bundles on disk: the manifest that lists every file, and checking a bundle against it.

Why a manifest: a bundle leaves our hands (to an editor, a lawyer, a court),
and whoever receives it must be able to tell, without our database, that no
file in it was changed, added or removed since it was made.  `manifest.json`
lists every other file with its SHA-256 and size; an RFC 3161 time-stamp over
the manifest (`manifest.json.tsr`, see `monitor.timestamp`) fixes when.

A bundle is a directory or a ZIP of the same tree; both are read the same
way, and nothing is ever extracted to check a ZIP.  Checking needs only this
module, the bundle and, for the time-stamp, the TSA's CA certificate.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from monitor.timestamp import TimestampCheck, check_timestamp

MANIFEST = "manifest.json"
TOKEN = "manifest.json.tsr"
BUNDLE_FORMAT = "provenance-evidence-bundle"
BUNDLE_FORMAT_VERSION = 1
_CHUNK = 1 << 20
_UNREADABLE = (zipfile.BadZipFile, zlib.error, EOFError, OSError)  # what reading a damaged entry raises


def hash_stream(stream: IO[bytes]) -> tuple[str, int]:
    """(SHA-256 hex, size) of everything left in a binary stream, read in chunks."""
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def hash_file(path: Path) -> tuple[str, int]:
    with open(path, "rb") as stream:
        return hash_stream(stream)


def bundle_files(root: Path) -> list[str]:
    """Every file under `root` but the manifest and its token, as sorted POSIX paths."""
    names = [path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file() or path.is_symlink()]
    return sorted(n for n in names if n not in (MANIFEST, TOKEN))


def write_manifest(root: Path, header: dict[str, Any]) -> bytes:
    """Write `root/manifest.json`: `header` plus every file's path, SHA-256 and size; its bytes."""
    files = []
    for name in bundle_files(root):
        sha256, size = hash_file(root / name)
        files.append({"path": name, "sha256": sha256, "size": size})
    manifest = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_FORMAT_VERSION, **header, "files": files}
    data = (json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode()
    (root / MANIFEST).write_bytes(data)
    return data


def zip_tree(root: Path, target: Path) -> None:
    """`root`'s files into a new ZIP at `target` (written beside it first, then renamed into place)."""
    partial = target.with_name(f".{target.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as archive:
            for name in [MANIFEST, TOKEN, *bundle_files(root)]:
                path = root / name
                if path.is_file():
                    # media are compressed already; text is small either way
                    method = zipfile.ZIP_DEFLATED if path.suffix in (".json", ".txt", ".md", ".html") \
                        else zipfile.ZIP_STORED
                    archive.write(path, name, compress_type=method)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


# --- checking --------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One way a bundle differs from its manifest; `str()` is the line people read."""

    kind: str  # "changed", "missing", "unexpected file", "time-stamp", "manifest"
    path: str | None
    detail: str = ""

    def __str__(self) -> str:
        if self.kind == "time-stamp":
            return f"time-stamp: {self.detail}"
        text = f"{self.kind}: {self.path}" if self.path else f"{self.kind}:"
        return text + (f" ({self.detail})" if self.detail else "")

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "detail": self.detail, "line": str(self)}


@dataclass
class Verification:
    path: Path
    problems: list[Problem] = field(default_factory=list)
    files_checked: int = 0
    manifest: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str | None = None
    timestamp: TimestampCheck | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "ok": self.ok, "files_checked": self.files_checked,
                "manifest_sha256": self.manifest_sha256, "created_at": self.manifest.get("created_at"),
                "problems": [p.as_json() for p in self.problems],
                "timestamp": self.timestamp.as_json() if self.timestamp else None}


class _Reader:
    """The files of a bundle, a directory or a ZIP, by POSIX path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None
        self.links: set[str] = set()
        if self.zip is not None:
            infos = [i for i in self.zip.infolist() if not i.is_dir()]
            self.names = [i.filename for i in infos]
        else:
            self.names = sorted(p.relative_to(path).as_posix() for p in path.rglob("*")
                                if p.is_file() or p.is_symlink())
            self.links = {n for n in self.names if (path / n).is_symlink()}

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        if self.zip is not None:
            with self.zip.open(name) as stream:
                yield stream
        else:
            with open(self.path / name, "rb") as stream:
                yield stream

    def read(self, name: str) -> bytes:
        with self.open(name) as stream:
            return stream.read()

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def verify_bundle(path: Path, ca_pem: bytes | None = None) -> Verification:
    """Check every file of a bundle against its manifest, and the time-stamp token if there is one.

    Finds: a listed file whose SHA-256 or size differs (`changed`), a listed
    file that is not there (`missing`), a file that is not listed
    (`unexpected file`), and a token that does not parse, does not verify
    against `ca_pem`, or is not for this manifest (`time-stamp`).
    """
    result = Verification(path=Path(path))
    try:
        reader = _Reader(Path(path))
    except (zipfile.BadZipFile, OSError) as exc:
        result.problems.append(Problem("manifest", None, f"{path} is neither a bundle directory nor a ZIP: {exc}"))
        return result
    try:
        _verify(reader, result, ca_pem)
    finally:
        reader.close()
    return result


def _verify(reader: _Reader, result: Verification, ca_pem: bytes | None) -> None:
    counts: dict[str, int] = {}
    for name in reader.names:
        counts[name] = counts.get(name, 0) + 1
    for name, count in counts.items():
        if count > 1:
            result.problems.append(Problem("unexpected file", name, f"{count} entries with this name"))
    if MANIFEST not in counts:
        result.problems.append(Problem("missing", MANIFEST, "without it nothing can be checked"))
        return
    try:
        data = reader.read(MANIFEST)
    except _UNREADABLE as exc:
        result.problems.append(Problem("changed", MANIFEST, f"cannot be read: {exc}"))
        return
    result.manifest_sha256 = hashlib.sha256(data).hexdigest()
    try:
        manifest = json.loads(data)
        listed = {entry["path"]: entry for entry in manifest["files"]}
    except (ValueError, KeyError, TypeError) as exc:
        result.problems.append(Problem("changed", MANIFEST, f"not a readable manifest any more: {exc}"))
        manifest, listed = {}, {}
    result.manifest = manifest if isinstance(manifest, dict) else {}
    present = [n for n in counts if n not in (MANIFEST, TOKEN)]
    for name in sorted(set(present) - set(listed)):
        result.problems.append(Problem("unexpected file", name, "not in the manifest"))
    for name, entry in sorted(listed.items()):
        if name not in counts:
            result.problems.append(Problem("missing", name, f"sha256 {entry.get('sha256')}, {entry.get('size')} bytes"))
            continue
        if name in reader.links:
            result.problems.append(Problem("changed", name, "a symbolic link, not the file"))
            continue
        try:
            with reader.open(name) as stream:
                sha256, size = hash_stream(stream)
        except _UNREADABLE as exc:
            result.problems.append(Problem("changed", name, f"cannot be read: {exc}"))
            continue
        result.files_checked += 1
        if sha256 != entry.get("sha256") or size != entry.get("size"):
            result.problems.append(Problem("changed", name, f"sha256 {sha256}, {size} bytes; expected "
                                                            f"{entry.get('sha256')}, {entry.get('size')} bytes"))
    _verify_token(reader, result, counts, data, ca_pem)


def _verify_token(reader: _Reader, result: Verification, counts: dict[str, int], manifest_data: bytes,
                  ca_pem: bytes | None) -> None:
    authority = result.manifest.get("timestamp_authority")
    if TOKEN not in counts:
        if authority:
            result.problems.append(Problem("missing", TOKEN, f"the manifest says it was time-stamped by {authority}"))
        return
    try:
        token = reader.read(TOKEN)
    except _UNREADABLE as exc:
        result.problems.append(Problem("time-stamp", TOKEN, f"{TOKEN} cannot be read: {exc}"))
        return
    check = check_timestamp(token, manifest_data, ca_pem)
    result.timestamp = check
    result.problems += [Problem("time-stamp", TOKEN, f"{TOKEN}: {problem}") for problem in check.problems]
    if check.imprint_matches is False:
        if check.signature_checked:  # a genuine token for other bytes: the manifest is what changed
            result.problems.append(Problem("changed", MANIFEST, f"{check.hash_algorithm} {check.data_digest}; the "
                                                                f"time-stamp token is for {check.imprint}"))
        else:
            result.problems.append(Problem("time-stamp", TOKEN, f"{TOKEN} is for {check.hash_algorithm} "
                                                                f"{check.imprint}, not for {MANIFEST} "
                                                                f"({check.data_digest}): one of them was changed"))
