"""Poll throughput: items per minute through run-once's job on a local feed of 50 short clips.

Why: a newsroom daemon follows hundreds of accounts; this says how many new
posts per minute one poll worker takes in, where the time goes (list,
download, metadata+fingerprint, match+store), and how that compares with a
plain yt-dlp download of the same items (our overhead over the bare fetch).

    python benchmarks/poll_throughput.py [--items 50] [--db URL]

With --scaling, the same items on PostgreSQL through the job queue: 1, 2 and
4 queue workers (threads of one `provenance daemon`, or with --layout
processes one daemon process each) share a watch whose server answers every
request for a clip after a realistic delay (1 s), and the figure
is items per minute from the watch being added to the last item stored,
with the ratio to one worker measured in the same run:

    python benchmarks/poll_throughput.py --scaling [--layout threads|processes] [--items 24] [--delay 1.0]

Clips are generated once (3 s, 160x120, distinct scenes per seed) and cached
under benchmarks/.cache/; each run uses a fresh temporary data dir (and, for
--scaling, a fresh PostgreSQL database on the --pg-admin server).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
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


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # yt-dlp hangs up after probing: expected
        pass


class _DelayedHandler(SimpleHTTPRequestHandler):
    """Serves the clips after `delay` seconds each (a real site's latency), the feed at once."""

    delay = 1.0

    def do_GET(self) -> None:
        if self.path.endswith(".mp4"):
            time.sleep(self.delay)
        super().do_GET()

    def log_message(self, format: str, *args) -> None:
        pass


SCALING_CONFIG = """
[ytdlp]
retries = 0
concurrent_per_domain = 8

[daemon]
runner = "queue"
workers = {workers}
jitter_seconds = 0
refresh_seconds = 1
"""


def scaling(args: argparse.Namespace) -> int:
    """Items per minute with 1, 2 and 4 queue workers (one daemon process each) on PostgreSQL."""
    import sqlalchemy as sa

    from storage import SqlRepository, open_database

    paths = clips(args.items)
    _DelayedHandler.delay = args.delay
    server = _QuietServer(("127.0.0.1", 0), partial(_DelayedHandler, directory=str(CACHE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    write_feed(paths, base)
    admin = sa.create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
    rates: dict[int, float] = {}
    cpu: dict[int, float] = {}
    try:
        for workers in args.workers:
            cpu_before = _children_cpu()
            name = f"prov_bench_{uuid.uuid4().hex[:12]}"
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            daemons = []
            try:
                with tempfile.TemporaryDirectory(prefix="provenance-bench-") as tmp:
                    config = Path(tmp) / "bench.toml"
                    processes = workers if args.layout == "processes" else 1
                    config.write_text(SCALING_CONFIG.format(workers=workers // processes))
                    database = open_database(url)
                    repo = SqlRepository(database)
                    command = [sys.executable, "-c", "from monitor.cli.main import main; main()", "--db", url,
                               "--data-dir", str(Path(tmp) / "data"), "--config", str(config)]
                    subprocess.run([*command, "db", "upgrade"], check=True, capture_output=True)
                    logs = [open(Path(tmp) / f"daemon-{k}.log", "w") for k in range(processes)]
                    daemons = [subprocess.Popen([*command, "daemon"], stdout=subprocess.DEVNULL, stderr=log,
                                                cwd=ROOT) for log in logs]
                    while any("queue worker started" not in (Path(tmp) / f"daemon-{k}.log").read_text()
                              for k in range(processes)):
                        time.sleep(0.2)
                    started = time.perf_counter()
                    repo.add_watch(f"{base}/feed.rss", "rss", interval_seconds=3600)
                    while len(repo.list_posts()) < len(paths):
                        time.sleep(0.2)
                    seconds = time.perf_counter() - started
                    database.dispose()
                    rates[workers] = len(paths) / seconds * 60
                    print(f"{workers} worker(s): {len(paths)} items in {seconds:.1f} s, "
                          f"{rates[workers]:.0f} items/min", flush=True)
            finally:
                for daemon in daemons:
                    daemon.terminate()
                for daemon in daemons:
                    daemon.wait(60)
                cpu[workers] = _children_cpu() - cpu_before
                with admin.connect() as connection:
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        server.shutdown()
        admin.dispose()
    print()
    print(f"poll throughput on PostgreSQL through the job queue: {len(paths)} clips (3 s, 160x120), each request "
          f"for a clip answered after {args.delay:.1f} s; {os.cpu_count()} CPUs (load average "
          f"{os.getloadavg()[0]:.1f}), Python {platform.python_version()}")
    print()
    where = "one daemon process each" if args.layout == "processes" else "threads of one daemon"
    print(f"| queue workers ({where}) | items/min | ratio to 1 worker | daemons' CPU s per item |")
    print("|---:|---:|---:|---:|")
    one = rates.get(1)
    for workers, rate in rates.items():
        ratio = f"{rate / one:.2f}x" if one else ""
        print(f"| {workers} | {rate:.0f} | {ratio} | {cpu[workers] / len(paths):.2f} |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=None, help="clips in the feed (50; 24 with --scaling)")
    parser.add_argument("--db", help="database URL (default: SQLite in the temporary data dir)")
    parser.add_argument("--scaling", action="store_true", help="1, 2, 4 queue workers on PostgreSQL")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--delay", type=float, default=1.0, help="seconds before each download is answered")
    parser.add_argument("--layout", choices=["threads", "processes"], default="threads",
                        help="the workers as threads of one daemon, or one daemon process per worker")
    parser.add_argument("--pg-admin", default="postgresql+psycopg://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server where the benchmark may create databases")
    args = parser.parse_args()
    if args.scaling:
        args.items = args.items or 24
        return scaling(args)
    args.items = args.items or 50
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
