"""Loading a per-video signal index: from its log on disk against reading every value from the database.

A process that matches (a command, the daemon, `provenance serve`) loads each
per-video signal kind's index at its first query.  Without the log
(`fingerprints/signal_log.py`) it would read every stored value from the
`media_signals` table each time, the baseline measured here in the same run;
with it, it reads one local file and asks the database only for rows above the
log's high-water mark.  Both build the same in-memory index (the keypoints
kind's), so the difference is the reading.  Also timed: catching up after one
more video is stored (what every ingest and query pays), and a rebuild.

Values are real: the keypoints of generated clips (`monitor/synth`), each
stored video taking one of them, so sizes are what ingest stores.

Run from the repository root (SQLite by default; `--db` for PostgreSQL: an
empty database of its own, since the schema and rows are made in it):

    python benchmarks/signal_index_load.py [--videos 400] [--db postgresql://postgres@127.0.0.1/signal_bench]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fingerprints.signals import kind as signal_kind  # noqa: E402
from fingerprints.video import fingerprint_video  # noqa: E402
from monitor.config import load_config  # noqa: E402
from monitor.synth.samples import make_source_clip  # noqa: E402
from monitor.workspace import Workspace  # noqa: E402
from storage.records import NewMedia, SignalValue  # noqa: E402

KIND = "keypoints"


def real_values(root: Path, clips: int) -> list[bytes]:
    kind = signal_kind(KIND)
    values = []
    for seed in range(1, clips + 1):
        path = make_source_clip(root / f"clip-{seed}.mp4", seed=seed)
        values.append(kind.to_bytes(fingerprint_video(path, media=[kind]).signals[KIND]))
    return values


def store(ws: Workspace, values: list[bytes], first: int, count: int) -> None:
    for n in range(first, first + count):
        sha = f"{n:064x}"
        media = ws.repository.add_media(NewMedia(sha256=sha, size_bytes=1, store_path=f"media/{sha}.mp4",
                                                 duration=12.0, width=320, height=180, fps=15.0, video_codec=None,
                                                 audio_codec=None, container_format=None,
                                                 container_created_raw=None, container_created_at=None,
                                                 exiftool={}, ffprobe={}))
        ws.repository.add_fingerprint(media.id, ws.settings_id, [], 1, {},
                                      signals=[SignalValue(KIND, 1, values[n % len(values)])])


def timed(work) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def from_database(ws: Workspace) -> int:
    """The baseline: every value read from the database into a fresh index."""
    kind = signal_kind(KIND)
    index = kind.make_index()
    held = 0
    for row in ws.repository.iter_media_signals(ws.settings_id, KIND, kind.version):
        index.add(row.media_id, kind.from_bytes(row.value))
        held += 1
    return held


def from_log(config) -> tuple[float, float]:
    """A new process's first load (opening the workspace itself is not timed)."""
    ws = Workspace.open(config)
    try:
        return timed(ws.signal_indexes)
    finally:
        ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=400)
    parser.add_argument("--clips", type=int, default=4, help="distinct real values to draw from")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        values = real_values(root, args.clips)
        config = load_config(None, root / "data", args.db)
        ws = Workspace.open(config)
        try:
            store(ws, values, 0, args.videos)
            ws.rebuild_signal_index(signal_kind(KIND))  # the log, as ingest leaves it
            baseline = [timed(lambda: from_database(ws)) for _ in range(args.repeat)]
            loads = [from_log(config) for _ in range(args.repeat)]
            rebuild = timed(lambda: ws.rebuild_signal_index(signal_kind(KIND)))
            ws.signal_indexes()
            catch_up = []
            for n in range(args.repeat):
                store(ws, values, args.videos + n, 1)
                catch_up.append(timed(ws.signal_indexes))
            log_bytes = ws.signal_indexes()[KIND].log.disk_bytes()
            dialect = ws.repository.database.dialect
        finally:
            ws.close()

    def best(rows: list[tuple[float, float]]) -> tuple[float, float]:
        return min(w for w, _ in rows), min(c for _, c in rows)

    result = {"dialect": dialect, "videos": args.videos,
              "value_bytes_mean": round(statistics.mean(len(v) for v in values)),
              "log_mb": round(log_bytes / 1e6, 1),
              "database_read_s": best(baseline), "log_load_s": best(loads), "rebuild_s": rebuild,
              "catch_up_one_s": best(catch_up)}
    result["log_over_database_wall"] = round(result["log_load_s"][0] / result["database_read_s"][0], 2)
    if args.json:
        print(json.dumps(result))
        return
    print(f"{dialect}: {args.videos} videos, values of {result['value_bytes_mean']:,} bytes on average "
          f"(log {result['log_mb']} MB)")
    for label, key in (("read every value from the database (baseline)", "database_read_s"),
                       ("open a workspace, load from the log", "log_load_s"),
                       ("rebuild the log from the database", "rebuild_s"),
                       ("catch up after one more video", "catch_up_one_s")):
        wall, cpu = result[key]
        print(f"  {label:48s} {wall:7.3f} s wall  {cpu:7.3f} s CPU")
    print(f"  log load / database read (wall): {result['log_over_database_wall']}")


if __name__ == "__main__":
    main()
