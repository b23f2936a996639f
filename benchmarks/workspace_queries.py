"""Workspace queries at scale: post searches and footage groups, against doing the same in Python.

`provenance posts` and the web's search pages filter in SQL on indexed
columns (trigram indexes for substrings on PostgreSQL); `provenance footage`
builds its groups from two integer columns of `matches` and a GROUP BY over
`posts`.  The baselines are what a first version would do: load every post
(`list_posts`) and filter or group them in Python, with every match row
(`matches_among` over all media, evidence included).

A synthetic store (no frames: neither query reads them): MEDIA media, about
1.3 posts each on a few platforms and uploaders, and matches that join the
media into groups of 1 to 8 (a chain inside each group).  CPU time is this
process's (user + system, the database in-process for SQLite); on PostgreSQL
(--db) the server's time is not counted, so compare wall time there.

    python benchmarks/workspace_queries.py [--media 20000] [--db postgresql://...] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from monitor.jobs.browse import _components, footage_groups  # noqa: E402
from storage.db import open_database  # noqa: E402
from storage.models import MatchModel, MediaModel, PostModel  # noqa: E402
from storage.records import PostSearch  # noqa: E402
from storage.repository import SqlRepository  # noqa: E402

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build(repo: SqlRepository, media: int, seed: int) -> int:
    rng = random.Random(seed)
    settings = repo.get_or_create_settings("bench", "phash64", {})
    now = datetime.now(UTC)
    with repo.database.engine.begin() as c:
        c.execute(sa.insert(MediaModel), [{"sha256": f"{n:064x}", "size_bytes": 1, "store_path": f"m/{n}",
                                           "exiftool": {}, "ffprobe": {}, "created_at": now}
                                          for n in range(1, media + 1)])
        ids = list(c.execute(sa.select(MediaModel.id).order_by(MediaModel.id)).scalars())
        posts = []
        for n, m in enumerate(ids):
            for k in range(1 + (rng.random() < 0.3)):
                platform = rng.choice(["telegram", "youtube", "tiktok", "rss"])
                posts.append({"media_id": m, "url": f"https://{platform}.example/{rng.choice('abcdefgh')}/{n}-{k}",
                              "platform": platform, "uploader": f"user{rng.randrange(500)}",
                              "title": f"clip {n} {rng.choice(['fire', 'flood', 'storm', 'crowd'])}",
                              "published_at": T0 + timedelta(minutes=rng.randrange(10**6)),
                              "published_precision": "second", "published_source": "rss pubDate",
                              "first_seen_at": T0 + timedelta(minutes=n), "raw_metadata": {}})
        c.execute(sa.insert(PostModel), posts)
        matches, i = [], 0
        while i < len(ids):
            size = rng.randint(1, 8)
            group = ids[i:i + size]
            matches += [{"query_media_id": b, "stored_media_id": a, "settings_id": settings, "query_coverage": 1.0,
                         "stored_coverage": 1.0, "mirrored": False, "speed": 1.0, "score": 1.0,
                         "segments": [{"query_start": 0, "query_end": 5, "stored_start": 0, "stored_end": 5}],
                         "evidence": {"pairs": [[t / 4, t / 4, 3] for t in range(20)]}, "created_at": now}
                        for a, b in zip(group, group[1:])]
            i += size
        c.execute(sa.insert(MatchModel), matches)
    return settings


def best(fn, repeat: int) -> tuple[float, float, object]:
    runs = []
    for _ in range(repeat):
        c0, w0 = cpu(), time.perf_counter()
        result = fn()
        runs.append((cpu() - c0, time.perf_counter() - w0, result))
    return min(runs, key=lambda r: r[0])


def python_search(repo: SqlRepository, text: str):
    return sorted((p for p in repo.list_posts() if text in p.url.lower()),
                  key=lambda p: (p.first_seen_at, p.id), reverse=True)[:50]


def python_groups(repo: SqlRepository, settings: int):
    posts = repo.list_posts()
    by_media: dict[int, int] = {}
    for p in posts:
        by_media[p.media_id] = by_media.get(p.media_id, 0) + 1
    edges = [(m.query_media_id, m.stored_media_id) for m in repo.matches_among(by_media, settings)]
    groups = _components(set(by_media), edges)
    return sorted((sum(by_media[m] for m in g) for g in groups.values()), reverse=True)[:50]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=20000)
    parser.add_argument("--db", help="an empty database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(args.db or f"sqlite:///{tmp}/bench.db")
        repo = SqlRepository(database)
        settings = build(repo, args.media, args.seed)
        ws = SimpleNamespace(repository=repo, settings_id=settings)
        print(f"store: {repo.count_media()} media, {repo.count_posts()} posts, "
              f"{len(repo.match_edges(settings))} matches ({database.dialect})")
        cases = [
            ("search --url '/c/' (50 newest)",
             lambda: [p.id for p in repo.search_posts(PostSearch(url="/c/", limit=50))],
             lambda: [p.id for p in python_search(repo, "/c/")]),
            ("footage (50 largest groups)",
             lambda: sorted((g.posts for g in footage_groups(ws, min_posts=1, limit=50, sample=0)), reverse=True),
             lambda: python_groups(repo, settings)),
        ]
        print(f"{'query':34} {'SQL cpu s':>10} {'wall s':>8} {'Python cpu s':>13} {'wall s':>8} {'cpu ratio':>10}")
        for name, fast, slow in cases:
            f_cpu, f_wall, f_result = best(fast, args.repeat)
            s_cpu, s_wall, s_result = best(slow, args.repeat)
            assert f_result == s_result, name
            print(f"{name:34} {f_cpu:10.3f} {f_wall:8.3f} {s_cpu:13.3f} {s_wall:8.3f} {s_cpu / f_cpu:9.1f}x")
        database.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
