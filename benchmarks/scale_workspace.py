"""A store of 10^6-10^7 frame rows through the workspace: what `find-earliest` pays cold and warm.

`benchmarks/scale.py` measures the on-disk index alone.  This script goes
through the code a real store runs: frame rows are written to the database
by `SqlRepository.add_media` and `add_fingerprint` (as ingest stores them,
in transactions of a few hundred videos), the workspace opens its indexes
(`Workspace.indexes`: segment files, then catch-up from the database above
their high-water mark), and each query is matched by
`monitor.jobs.matching.find_matches` (the frame route, the regions each
match's frames show, the per-video routes: none here, the store has no
keypoints).  Rows are `benchmarks.scale_store` videos (real pHash sequences,
perturbed and clustered), the whole-picture column only; a query is
`Store.query`: 100 noisy frames of one stored video and 100 of another that is
not stored, looked up as a query's picture hashes are.

Per size, each figure in a fresh process (the query's own decoding and
hashing excluded, as `find-earliest` of a file adds those):

- ``store_s``: writing the rows (media, fingerprint and frame rows);
- ``first_open_s``: the first `Workspace.indexes()` after that, which reads every
  row from the database into a new segment (what a first start after an
  upgrade, or `provenance db rebuild-index`, pays);
- ``cold_s``: a new process opens the workspace, its indexes (segments
  present) and answers one query: open, catch-up check, lookup, alignment,
  regions; ``cold_rebuild_s``: the same with the segment files deleted, so
  the index is rebuilt from the database first (the baseline: every cold
  start before issue 12);
- ``warm_p50_ms``/``warm_p99_ms``: that process then answers ``--queries``
  other queries twice; the second round is timed;
- ``found``: queries whose stored source video was among the matches (every sequence of the pool is
  stored many times, so each query's footage has many stored copies: ``matches_per_query``); with
  ``--baseline-params``, the same for the matcher with MatchParams changed;
- ``peak_rss_mb`` of the cold process; ``db_bytes_per_row``.

With ``--ingest-matches`` the videos are stored one by one, each first matched against those stored before it
with its matches stored (as ingest does; ``stored_matches`` counts them), so the store knows which of its
videos are copies of one another (`MatchParams.known_copies`); a store of its own (``rows-N-matched``).

    python benchmarks/scale_workspace.py --rows 1000000,10000000 --dir /work/scale-ws [--db postgresql://...] [--json]

A PostgreSQL URL must name an empty database of its own (the schema is made
in it).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SEED = 1
BATCH_VIDEOS = 500  # videos written per transaction


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(mode: str, *args: str) -> dict:
    """Run this script's `mode` in a fresh Python process; its last stdout line is JSON."""
    out = subprocess.run([sys.executable, __file__, "--child", mode, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def workspace(data_dir: str, db_url: str):
    from monitor.config import load_config
    from monitor.workspace import Workspace

    return Workspace.open(load_config(None, data_dir, db_url or None))


def query_fingerprint(hashes: np.ndarray):
    """A query's fingerprint from its picture hashes, 4 frames a second (nothing else: no centre, no signals).
    The mirrored pass looks up each hash with half its bits flipped: another picture, as a flip is."""
    from fingerprints.model import FingerprintSettings, FrameHash, VideoFingerprint

    frames = [FrameHash(index=k, timestamp=k * 0.25, hashes={"picture": int(h)},
                        mirrored={"picture": int(h) ^ 0x5555555555555555}, quality=40.0)
              for k, h in enumerate(hashes)]
    return VideoFingerprint(settings=FingerprintSettings(), duration=len(frames) * 0.25, frames=frames,
                            signals={})


def do_store(data_dir: str, db_url: str, rows: int, matched: str = "") -> dict:
    """Write the store; with `matched`, each video is matched against what is stored before it first and its
    matches stored, as ingest does (`find_matches`, `save_match`): the store's known copies."""
    from benchmarks.scale import load_pool
    from benchmarks.scale_store import Store
    from monitor.jobs.matching import find_matches, to_new_match
    from storage.records import FrameRow, NewMedia

    store = Store(load_pool(), rows, SEED)
    ws = workspace(data_dir, db_url)
    wall, cpu, videos, saved = time.perf_counter(), time.process_time(), 0, 0
    try:
        for _, media, times, hashes in store.chunks():
            bounds = np.flatnonzero(np.diff(media)) + 1
            groups = list(zip(np.split(media, bounds), np.split(times, bounds), np.split(hashes, bounds)))
            batch = 1 if matched else BATCH_VIDEOS  # matched: each video sees those before it, as ingest does
            for start in range(0, len(groups), batch):
                with ws.repository.transaction() as repo:
                    for ids, t, h in groups[start:start + batch]:
                        record = repo.add_media(NewMedia(
                            sha256=f"{int(ids[0]):064x}", size_bytes=1, store_path=f"media/{int(ids[0])}.mp4",
                            duration=float(t[-1]) + 0.25, width=320, height=180, fps=4.0, video_codec="h264",
                            audio_codec=None, container_format="mp4", container_created_raw=None,
                            container_created_at=None))
                        if record.id != int(ids[0]):
                            raise SystemExit(f"media ids do not follow the store's ({record.id} for {ids[0]}): "
                                             "use an empty database")
                        if matched:
                            matches = find_matches(ws, query_fingerprint(h), {record.id})
                        repo.add_fingerprint(record.id, ws.settings_id,
                                             [FrameRow(index=k, timestamp=float(x), hashes={"hash": int(v)})
                                              for k, (x, v) in enumerate(zip(t, h))], len(t), {})
                        for m in matches if matched else ():
                            repo.save_match(to_new_match(record.id, ws.settings_id, m))
                            saved += 1
                        videos += 1
        stored = {"store_s": time.perf_counter() - wall, "store_cpu_s": time.process_time() - cpu, "videos": videos,
                  "stored_matches": saved}
        wall = time.perf_counter()
        ws.indexes()
        stored["first_open_s"] = time.perf_counter() - wall
        url = ws.repository.database.engine.url
        if url.get_backend_name() == "sqlite":
            stored["db_bytes_per_row"] = os.path.getsize(url.database) / rows
        return stored
    finally:
        ws.close()


def do_queries(data_dir: str, db_url: str, rows: int, queries: int, baselines: str = "[]") -> dict:
    from benchmarks.scale import load_pool
    from benchmarks.scale_store import Store

    store = Store(load_pool(), rows, SEED)
    asked = [store.query(seed) for seed in range(queries + 1)]
    fingerprints = [(query_fingerprint(h), source) for h, source in asked]
    from monitor.jobs.matching import find_matches  # imported before the clock starts, as the command has it

    wall, cpu = time.perf_counter(), time.process_time()
    ws = workspace(data_dir, db_url)
    try:
        opened = time.perf_counter()
        ws.indexes()
        indexed = time.perf_counter()
        first = find_matches(ws, fingerprints[0][0], set())
        cold = {"cold_s": time.perf_counter() - wall, "cold_cpu_s": time.process_time() - cpu,
                "open_s": opened - wall, "indexes_s": indexed - opened, "match_s": time.perf_counter() - indexed,
                "cold_found": fingerprints[0][1] in {m.media_id for m in first}}
        timings, found = [], 0
        for round_ in range(2):
            for fp, source in fingerprints[1:]:
                t = time.perf_counter()
                matches = find_matches(ws, fp, set())
                if round_:
                    timings.append(time.perf_counter() - t)
                    found += source in {m.media_id for m in matches}
        warm = np.array(timings or [np.nan]) * 1e3
        out = {**cold, "warm_p50_ms": float(np.percentile(warm, 50)),
               "warm_p99_ms": float(np.percentile(warm, 99)), "found": found, "queries": queries,
               "peak_rss_mb": peak_rss_mb(),
               "matches_per_query": _found(ws, fingerprints[1:])[1]}
        from benchmarks.match_params import parse_params

        for text in json.loads(baselines):  # the same queries, MatchParams changed (defaults otherwise)
            ws.match_params = parse_params(text, "--baseline-params")
            found_, per_query = _found(ws, fingerprints[1:])
            out.setdefault("baselines", []).append({"changed_params": text, "found": found_,
                                                    "matches_per_query": per_query})
        return out
    finally:
        ws.close()


def _found(ws, fingerprints: list) -> tuple[int, list[int]]:
    """(queries whose source was matched, matches per query) with the workspace's MatchParams."""
    from monitor.jobs.matching import find_matches

    answers = [{m.media_id for m in find_matches(ws, fp, set())} for fp, _ in fingerprints]
    return sum(source in a for a, (_, source) in zip(answers, fingerprints)), [len(a) for a in answers]


def measure(rows: int, root: Path, db_url: str, queries: int, reuse: bool, baselines: list[str],
            matched: bool = False) -> dict:
    data_dir = root / (f"rows-{rows}-matched" if matched else f"rows-{rows}")
    figures = data_dir / "stored.json"
    out = {"rows": rows, "load_average_start": os.getloadavg()[0]}
    if reuse and figures.is_file():  # the store of an earlier run; its index made again, not timed
        out.update(json.loads(figures.read_text()))
        child("queries", str(data_dir), db_url, str(rows), "0")
    else:
        if data_dir.exists():
            shutil.rmtree(data_dir)
        out.update(child("store", str(data_dir), db_url, str(rows), *(["matched"] if matched else [])))
        figures.write_text(json.dumps(out))
    print(f"{rows:,}: stored in {out['store_s']:.0f} s ({out.get('stored_matches', 0)} stored matches), first open "
          f"{out['first_open_s']:.1f} s", file=sys.stderr)
    out.update(child("queries", str(data_dir), db_url, str(rows), str(queries), json.dumps(baselines)))
    shutil.rmtree(data_dir / "index")  # the baseline: no segment files, rebuilt from the database at start
    rebuilt = child("queries", str(data_dir), db_url, str(rows), "1")
    out.update({"cold_rebuild_s": rebuilt["cold_s"], "cold_rebuild_peak_rss_mb": rebuilt["peak_rss_mb"],
                "load_average_end": os.getloadavg()[0]})
    print(f"{rows:,}: cold {out['cold_s']:.2f} s (rebuilt from the database: {out['cold_rebuild_s']:.2f} s), "
          f"warm p50 {out['warm_p50_ms']:.0f} ms, p99 {out['warm_p99_ms']:.0f} ms, found {out['found']}/{queries}, "
          f"peak RSS {out['peak_rss_mb']:.0f} MB", file=sys.stderr)
    for baseline in out.get("baselines", []):
        print(f"{rows:,}: with {baseline['changed_params']}: found {baseline['found']}/{queries}, matches per "
              f"query {baseline['matches_per_query']}", file=sys.stderr)
    return out


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        mode, args = sys.argv[2], sys.argv[3:]
        if mode == "store":
            print(json.dumps(do_store(args[0], args[1], int(args[2]), *args[3:])))
        else:
            print(json.dumps(do_queries(args[0], args[1], int(args[2]), int(args[3]), *args[4:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", required=True, help="store sizes in frame rows, e.g. 1000000,10000000")
    parser.add_argument("--dir", type=Path, required=True, help="where the data dirs go (one per size)")
    parser.add_argument("--db", default="", help="a PostgreSQL URL (an empty database); default: SQLite in --dir")
    parser.add_argument("--queries", type=int, default=20, help="queries timed warm")
    parser.add_argument("--baseline-params", metavar="KEY=VALUE,...", action="append", default=[],
                        help="also answer the warm queries with these MatchParams changed, e.g. crowd_ratio=0 "
                             "(repeatable): sources found and matches per query")
    parser.add_argument("--reuse", action="store_true",
                        help="query the stores an earlier run left in --dir (SQLite) instead of writing them again")
    parser.add_argument("--ingest-matches", action="store_true",
                        help="store the videos one by one, each matched against those stored before it and its "
                             "matches stored, as ingest does (slow: one find_matches per video); the store then "
                             "knows which copies it holds (MatchParams.known_copies)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for rows in (int(r) for r in args.rows.split(",")):
        out = measure(rows, args.dir, args.db, args.queries, args.reuse, args.baseline_params, args.ingest_matches)
        print(json.dumps(out) if args.json else
              f"{rows:>11,} rows: store {out['store_s']:.0f} s, first open {out['first_open_s']:.1f} s, "
              f"cold {out['cold_s']:.2f} s against {out['cold_rebuild_s']:.2f} s rebuilding "
              f"({out['cold_rebuild_s'] / out['cold_s']:.1f}x), warm p50 {out['warm_p50_ms']:.0f} ms, "
              f"found {out['found']}/{out['queries']}, peak RSS {out['peak_rss_mb']:.0f} MB", flush=True)


if __name__ == "__main__":
    main()
