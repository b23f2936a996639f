"""Export: a find-earliest answer as an evidence bundle someone else can check without us.

A report file says what we found; a bundle carries what it was found from:
the report in every format, each appearance's original file as stored (or
only its hash), the platform's raw metadata, exiftool's and ffprobe's
reports, JPEG stills of the matched moments of both videos, every revisit of
each post, and `manifest.json` with every file's SHA-256 and size and how
and where the bundle was made; optionally an RFC 3161 time-stamp over the
manifest (see `monitor.bundle`, `monitor.timestamp`).

Layout (NN is the appearance's rank in the report, earliest first)::

    manifest.json, manifest.json.tsr
    report.txt, report.json, report.md, report.html
    query/<sha256>.<ext>                       the query file (not with --no-media)
    media/<sha256>.<ext>                       each distinct stored file once (not with --no-media)
    appearances/NN-post-<id>/post.json         the post as stored, raw metadata included
    appearances/NN-post-<id>/exiftool.json, ffprobe.json, observations.json
    appearances/NN-post-<id>/frames/KK-query-<t>s.jpg, KK-stored-<t>s.jpg

The bundle is built in a hidden directory beside the target and moved into
place only when complete (time-stamp included), so a failure leaves nothing.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.bundle import TOKEN, hash_file, write_manifest, zip_tree
from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.timestamp import TimestampError, check_timestamp, request_timestamp
from monitor.workspace import Workspace

REPORT_FILES = {"text": "report.txt", "json": "report.json", "markdown": "report.md", "html": "report.html"}
STILLS_PER_PROCESS = 16  # ffmpeg inputs per process when cutting stills (each is one seek into the file)
EXACT_STILLS = 3  # stills of an identical file: evenly spread over it
FFMPEG_TIMEOUT = 300


class ExportError(Exception):
    """The bundle cannot be made as asked (bad target, damaged store, time-stamping failed)."""


class ExportInputError(ExportError):
    """The request itself is unusable (the target exists)."""


@dataclass
class Still:
    """One JPEG to cut: `source` at `at` seconds, into `name` (bundle path)."""

    source: Path
    at: float
    name: str
    side: str  # "query" or "stored"
    pair: int
    appearance: int
    distance: int | None = None
    mirrored: bool = False


@dataclass
class ExportSummary:
    path: Path
    files: int
    bytes: int
    appearances: int
    media_included: int
    media_hash_only: int
    stills: int
    stills_missing: list[str] = field(default_factory=list)
    timestamp: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False, default=_json_default) + "\n", encoding="utf-8")


def _version_line(command: list[str]) -> str | None:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.splitlines()[0].strip() if out.strip() else None


def tool_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    def package(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"provenance": package("provenance"), "yt-dlp": package("yt-dlp"),
            "rfc3161-client": package("rfc3161-client"), "python": platform.python_version(),
            "ffmpeg": _version_line(["ffmpeg", "-version"]), "exiftool": _version_line(["exiftool", "-ver"])}


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return list(items)
    if n <= 1:
        return items[len(items) // 2: len(items) // 2 + 1]
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def plan_stills(number: int, a: Appearance, query: Path | None, stored: Path, folder: str, per_appearance: int,
                query_duration: float) -> list[Still]:
    """The stills of one appearance: pairs of the query and the stored video at matched moments."""
    if a.match is None:
        duration = a.media.duration or query_duration
        count = min(EXACT_STILLS, per_appearance)
        moments = [(duration * (k + 1) / (count + 1),) * 2 + (0,) for k in range(count)]
    else:
        moments = [(p.query_time, p.stored_time, p.distance) for p in _spread(a.match.pairs, per_appearance)]
    mirrored = bool(a.match and a.match.mirrored)
    stills = []
    for k, (q_time, s_time, distance) in enumerate(moments, 1):
        if query is not None:
            stills.append(Still(query, q_time, f"{folder}/frames/{k:02d}-query-{q_time:09.3f}s.jpg", "query", k,
                                number, distance))
        stills.append(Still(stored, s_time, f"{folder}/frames/{k:02d}-stored-{s_time:09.3f}s.jpg", "stored", k,
                            number, distance, mirrored))
    return stills


def cut_stills(stills: list[Still], root: Path) -> list[Still]:
    """Cut every still as a full-size JPEG, many per ffmpeg process (one seeked input each); the ones cut."""
    by_source: dict[Path, list[Still]] = {}
    for still in stills:
        by_source.setdefault(still.source, []).append(still)
    for source, group in by_source.items():
        for start in range(0, len(group), STILLS_PER_PROCESS):
            batch = group[start:start + STILLS_PER_PROCESS]
            command = ["ffmpeg", "-nostdin", "-v", "error", "-y"]
            for still in batch:
                command += ["-ss", f"{max(0.0, still.at):.3f}", "-i", f"file:{source.resolve()}"]
            for n, still in enumerate(batch):
                out = root / still.name
                out.parent.mkdir(parents=True, exist_ok=True)
                command += ["-map", f"{n}:v:0", "-frames:v", "1", "-q:v", "2", "-update", "1", f"file:{out}"]
            try:
                subprocess.run(command, capture_output=True, timeout=FFMPEG_TIMEOUT, check=False)
            except subprocess.TimeoutExpired:
                pass  # whatever was cut is kept; the rest are listed as missing
    cut = []
    for still in stills:
        out = root / still.name
        if out.is_file() and out.stat().st_size > 0:
            cut.append(still)
        else:
            out.unlink(missing_ok=True)
    return cut


def _copy_verified(source: Path, target: Path, sha256: str) -> None:
    """Copy a stored file into the bundle, refusing one whose content no longer has its SHA-256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    found, _ = hash_file(target)
    if found != sha256:
        raise ExportError(f"the media store's copy of {sha256} ({source}) has SHA-256 {found}: the store is "
                          "damaged; restore that file from a backup before exporting")


def _database_shown(ws: Workspace) -> str:
    from sqlalchemy.engine import make_url

    return make_url(ws.repository.database.url).render_as_string(hide_password=True)


def export_bundle(ws: Workspace, report: EarliestReport, target: Path, *, include_media: bool = True,
                  tsa_url: str | None = None, ca_pem: bytes | None = None, render=None) -> ExportSummary:
    """Write the bundle for `report` at `target` (a directory, or a ZIP when it ends in .zip).

    `tsa_url` asks that time-stamping authority for a token over the manifest;
    with `ca_pem` the token is checked at once.  `render(fmt, report, store)`
    makes the report files (default: `monitor.reports.render_report`).
    Raises ExportInputError when `target` exists, ExportError when the
    store is damaged or time-stamping fails; nothing is left at `target` then.
    """
    target = Path(target)
    if target.exists() or target.is_symlink():
        raise ExportInputError(f"{target} exists already; give a new path (a bundle is never written over "
                               "another one)")
    target.parent.mkdir(parents=True, exist_ok=True)
    if render is None:
        from monitor.reports import render_report as render
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        summary = _build(ws, report, staging, include_media, tsa_url, ca_pem, render)
        if target.suffix.lower() == ".zip":
            zip_tree(staging, target)
            shutil.rmtree(staging)
        else:
            os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    summary.path = target
    summary.bytes = target.stat().st_size if target.is_file() else summary.bytes
    return summary


def _build(ws: Workspace, report: EarliestReport, root: Path, include_media: bool, tsa_url: str | None,
           ca_pem: bytes | None, render) -> ExportSummary:
    created_at = datetime.now(UTC)
    for fmt, name in REPORT_FILES.items():
        (root / name).write_text(render(fmt, report, ws.store), encoding="utf-8")
    query_local = report.query_file if report.query_file.is_file() else None
    query_entry: dict[str, Any] = {"path": None if report.query_url else str(report.query_path),
                                   "url": report.query_url, "sha256": report.query_sha256,
                                   "duration": report.query_duration, "file": None}
    if include_media and query_local is not None:
        name = f"query/{report.query_sha256}{Path(query_local).suffix.lower()}"
        _copy_verified(Path(query_local), root / name, report.query_sha256)
        query_entry["file"] = name
    per_appearance = int(ws.config.section("evidence")["frames_per_appearance"])
    media_files: dict[str, str | None] = {}
    appearances, stills = [], []
    for number, a in enumerate(report.appearances, 1):
        folder = f"appearances/{number:02d}-post-{a.post.id}"
        stored = ws.store.path(a.media.store_path)
        if a.media.sha256 not in media_files:
            media_files[a.media.sha256] = None
            if include_media:
                name = f"media/{a.media.sha256}{stored.suffix.lower()}"
                _copy_verified(stored, root / name, a.media.sha256)
                media_files[a.media.sha256] = name
        _write_json(root / folder / "post.json", asdict(a.post))
        _write_json(root / folder / "exiftool.json", a.media.exiftool)
        _write_json(root / folder / "ffprobe.json", a.media.ffprobe)
        _write_json(root / folder / "observations.json", [asdict(o) for o in a.observations])
        stills += plan_stills(number, a, query_local, stored, folder, per_appearance, report.query_duration)
        appearances.append({"number": number, "post_id": a.post.id, "url": a.post.url, "media_id": a.media.id,
                            "sha256": a.media.sha256, "size": a.media.size_bytes,
                            "media_file": media_files[a.media.sha256], "directory": folder,
                            "flags": list(a.flags), "observations": len(a.observations)})
    cut = cut_stills(stills, root)
    cut_names = {s.name for s in cut}
    header = {
        "created_at": _iso(created_at),
        "tools": tool_versions(),
        "query": query_entry,
        "store": {"database": _database_shown(ws), "data_dir": str(ws.config.data_dir),
                  "counts": {"media": ws.repository.count_media(), "posts": ws.repository.count_posts(),
                             "observations": ws.repository.count_observations()}},
        "fingerprint_settings": {"key": ws.settings.key(), "algorithm": ws.settings.algorithm,
                                 "params": ws.settings.params()},
        "matching": asdict(ws.match_params),
        "media_included": include_media,
        "appearances": appearances,
        "stills": [{"path": s.name, "appearance": s.appearance, "pair": s.pair, "side": s.side,
                    "at": round(s.at, 3), "distance": s.distance, "mirrored": s.mirrored, "cut": s.name in cut_names}
                   for s in stills],
        "timestamp_authority": tsa_url or None,
    }
    manifest = write_manifest(root, header)
    timestamp = None
    if tsa_url:
        try:
            token = request_timestamp(manifest, tsa_url, float(ws.config.section("evidence")["tsa_timeout"]))
        except TimestampError as exc:
            raise ExportError(f"{exc}; try again later, or export with --no-timestamp") from exc
        check = check_timestamp(token, manifest, ca_pem)
        if ca_pem is not None and not check.ok:
            raise ExportError(f"the time-stamp from {tsa_url} does not check out: {'; '.join(check.problems)}")
        (root / TOKEN).write_bytes(token)
        timestamp = {"authority": tsa_url, "time": _iso(check.gen_time), "tsa": check.tsa,
                     "serial": check.serial, "checked_against_ca": check.signature_checked}
    files = json.loads(manifest)["files"]
    return ExportSummary(path=root, files=len(files) + 1 + (1 if timestamp else 0),
                         bytes=sum(f["size"] for f in files) + len(manifest), appearances=len(report.appearances),
                         media_included=sum(1 for v in media_files.values() if v),
                         media_hash_only=sum(1 for v in media_files.values() if not v), stills=len(cut),
                         stills_missing=[s.name for s in stills if s.name not in cut_names], timestamp=timestamp)
