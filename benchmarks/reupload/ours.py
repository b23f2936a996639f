"""Every call the re-upload suite makes into the product, in one place.

The suite scores our matcher the way a user meets it: stored posts are
ingested through the ingest job (with their claimed publication time, URL and
uploader) into a store in a temporary data dir, and each query goes through
the find-earliest job, whose appearances are read back.  `monitor/` is being
reorganised; when its import paths move, only this file changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .peers import cpu_seconds


@dataclass(frozen=True)
class StoredPost:
    name: str
    path: Path
    url: str
    uploader: str
    published_at: datetime


@dataclass
class FoundAppearance:
    url: str
    earliest: bool  # the first appearance find-earliest lists
    segments: list[tuple[float, float, float, float]]  # (query_start, query_end, stored_start, stored_end)
    speed: float | None  # stored seconds per query second; None for an identical file
    mirrored: bool
    edits: list[str] = field(default_factory=list)  # as the report names them


@dataclass
class StoreHandle:
    workspace: object
    data_dir: Path
    ingest_cpu_s: float = 0.0
    ingest_wall_s: float = 0.0
    failures: list[str] = field(default_factory=list)


def build_store(data_dir: Path, posts: list[StoredPost], log=print) -> StoreHandle:
    """Ingest every post through the product's ingest job into a fresh store under `data_dir`."""
    from monitor.config import load_config
    from monitor.analysis import InputError
    from monitor.jobs.ingest import ingest_file
    from monitor.workspace import Workspace
    from storage.records import PRECISION_SECOND, SOURCE_USER, NewPost

    ws = Workspace.open(load_config(data_dir=data_dir))
    handle = StoreHandle(ws, Path(data_dir))
    c0, t0 = cpu_seconds(), time.perf_counter()
    for n, post in enumerate(posts, 1):
        try:
            ingest_file(ws, post.path, NewPost(media_id=0, url=post.url, platform="example", uploader=post.uploader,
                                               published_at=post.published_at, published_precision=PRECISION_SECOND,
                                               published_source=SOURCE_USER))
        except InputError as exc:
            handle.failures.append(f"{post.name}: {exc}")
        if n % 25 == 0:
            log(f"  ours: ingested {n}/{len(posts)}")
    handle.ingest_cpu_s, handle.ingest_wall_s = cpu_seconds() - c0, time.perf_counter() - t0
    return handle


def find(handle: StoreHandle, query_path: Path) -> list[FoundAppearance]:
    """find-earliest on one query: every appearance, earliest first, as the JSON report describes it."""
    from monitor.jobs.earliest import find_earliest
    from monitor.reports import detected_edits

    report = find_earliest(handle.workspace, Path(query_path))
    out = []
    for k, a in enumerate(report.appearances):
        m = a.match
        out.append(FoundAppearance(
            url=a.post.url, earliest=k == 0,
            segments=[(s.query_start, s.query_end, s.stored_start, s.stored_end) for s in m.segments] if m else [],
            speed=m.speed if m else None, mirrored=bool(m and m.mirrored), edits=detected_edits(m)))
    return out


def close(handle: StoreHandle) -> None:
    handle.workspace.close()


def store_bytes(handle: StoreHandle) -> dict[str, int]:
    """Bytes on disk: the database (fingerprints, index rows, records) and the media store (the files)."""
    files = [p for p in handle.data_dir.rglob("*") if p.is_file()]
    media = sum(p.stat().st_size for p in files if "media" in p.relative_to(handle.data_dir).parts[:1])
    return {"database": sum(p.stat().st_size for p in files) - media, "media": media}
