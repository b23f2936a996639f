"""Poll throughput: items per minute through run-once's job on a local feed of 50 short clips.

Why: a newsroom daemon follows hundreds of accounts; this says how many new
posts per minute one poll worker takes in, where the time goes (list,
download, metadata+fingerprint, match+store), and how that compares with a
plain yt-dlp download of the same items (our overhead over the bare fetch).

    python benchmarks/poll_throughput.py [--items 50] [--db URL]

Clips are generated once (3 s, 160x120, distinct scenes per seed) and cached
under benchmarks/.cache/; each run uses a fresh temporary data dir.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yt_dlp import YoutubeDL  # noqa: E402

from monitor.config import load_config  # noqa: E402
from monitor.demo import serve  # noqa: E402
from monitor.workspace import Workspace
from monitor.jobs.poll import STAGES, default_source, poll_all  # noqa: E402
from monitor.synth.samples import make_source_clip  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "poll_clips"
STAGE_NAMES = {"list": "list", "download": "download", "analyse": "metadata + fingerprint",
               "ingest": "match + store"}


def clips(count: int) -> list[Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in range(count):
        path = CACHE / f"clip-{seed:03d}.mp4"
        if not path.exists():
            order = tuple((seed + k) % 4 for k in range(4))
            make_source_clip(path, seed=seed, duration=3.0, size="160x120", fps=15, scene_order=order)
        paths.append(path)
    return paths


def write_feed(paths: list[Path], base: str) -> None:
    items = "".join(
        f"<item><title>clip {n}</title><pubDate>Fri, 01 Mar 2024 {n // 60:02d}:{n % 60:02d}:00 +0000</pubDate>"
        f'<enclosure url="{base}/{p.name}" type="video/mp4" length="{p.stat().st_size}"/></item>'
        for n, p in enumerate(paths))
    (CACHE / "feed.rss").write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>bench</title>{items}'
                                    "</channel></rss>")


def plain_ytdlp(urls: list[str], target: Path) -> float:
    started = time.perf_counter()
    with YoutubeDL({"quiet": True, "noprogress": True, "outtmpl": str(target / "%(id)s.%(ext)s"),
                    "cachedir": False}) as ydl:
        ydl.download(urls)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--db", help="database URL (default: SQLite in the temporary data dir)")
    args = parser.parse_args()
    paths = clips(args.items)
    server = serve(CACHE)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    write_feed(paths, base)
    try:
        with tempfile.TemporaryDirectory(prefix="provenance-bench-") as tmp:
            baseline = plain_ytdlp([f"{base}/{p.name}" for p in paths], Path(tmp) / "plain")
            config = load_config(None, Path(tmp) / "data", args.db)
            ws = Workspace.open(config)
            try:
                ws.repository.add_watch(f"{base}/feed.rss", "rss")
                started = time.perf_counter()
                (summary,) = poll_all(ws, source=default_source(config))
                total = time.perf_counter() - started
            finally:
                ws.close()
    finally:
        server.shutdown()
    assert summary.items_new == len(paths), summary.errors
    per_minute = len(paths) / total * 60
    baseline_per_minute = len(paths) / baseline * 60
    print(f"poll throughput: {len(paths)} clips (3 s, 160x120), {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, {ws.repository.database.dialect}")
    print()
    print("| stage | seconds | share | per item |")
    print("|---|---:|---:|---:|")
    for stage in STAGES:
        seconds = summary.seconds[stage]
        print(f"| {STAGE_NAMES[stage]} | {seconds:.1f} | {seconds / total:.0%} | {seconds / len(paths):.3f} s |")
    other = total - sum(summary.seconds.values())
    print(f"| bookkeeping (poll and item records) | {other:.1f} | {other / total:.0%} | {other / len(paths):.3f} s |")
    print(f"| **total** | **{total:.1f}** | 100% | {total / len(paths):.3f} s |")
    print()
    print(f"run-once: {per_minute:.0f} items/min; plain yt-dlp download of the same items: "
          f"{baseline_per_minute:.0f} items/min ({baseline:.1f} s); ratio {total / baseline:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
