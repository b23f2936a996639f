"""How long `provenance watch add` takes on a local feed, and where the time went (issue 14.5).

Why: adding a watch took 2.5-5 s. Each figure is one whole command in a fresh
process (as people run it), the median of --runs runs, wall clock and the
CPU the process used, next to baselines measured in the same run:

* `watch list` on the same database: what any command costs (Python,
  the CLI, opening the database), the floor for `watch add`;
* `watch add` with an empty extractor-pattern cache (a fresh
  XDG_CACHE_HOME per run): the pattern reading every add did before the
  cache (`monitor.sources.classify`);
* with `--compare-with DIR`, `watch add` and `watch list` of the code
  checked out in DIR (e.g. the main branch before this change), on a
  database of their own.

    python benchmarks/watch_add.py [--runs 5] [--compare-with /path/to/other/checkout]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title><item><title>Clip</title>'
        b'<enclosure url="http://127.0.0.1/clip.mp4" type="video/mp4" length="1"/></item></channel></rss>')


class FeedHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, *args) -> None:
        pass


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one command, run in the checkout its PYTHONPATH names (`-m` puts the
    working directory first on the path)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=env["PYTHONPATH"])
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--compare-with", metavar="DIR", type=Path, help="another checkout to time alike")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), FeedHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PROVENANCE_NO_SERVER": "1",
               "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        command = [sys.executable, "-m", "monitor.cli", "--data-dir", str(data)]
        timed([*command, "watch", "add", f"{base_url}/warm-up.rss"], env)  # migrates, fills the pattern cache
        if args.compare_with:
            other_env = {**env, "PYTHONPATH": str(args.compare_with.resolve())}
            other = [sys.executable, "-m", "monitor.cli", "--data-dir", str(Path(tmp) / "other")]
            timed([*other, "watch", "add", f"{base_url}/warm-up.rss"], other_env)
        results: dict[str, list[tuple[float, float]]] = {}
        for n in range(args.runs):  # interleaved, so a busy machine slows every case alike
            results.setdefault("watch list", []).append(timed([*command, "watch", "list"], env))
            results.setdefault("watch add", []).append(
                timed([*command, "watch", "add", f"{base_url}/feed-{n}.rss"], env))
            cold = {**env, "XDG_CACHE_HOME": str(Path(tmp) / f"cold-{n}")}
            results.setdefault("watch add, empty pattern cache", []).append(
                timed([*command, "watch", "add", f"{base_url}/cold-{n}.rss"], cold))
            if args.compare_with:
                results.setdefault(f"watch list, code in {args.compare_with}", []).append(
                    timed([*other, "watch", "list"], other_env))
                results.setdefault(f"watch add, code in {args.compare_with}", []).append(
                    timed([*other, "watch", "add", f"{base_url}/other-{n}.rss"], other_env))
    server.shutdown()

    floor = statistics.median(cpu for _, cpu in results["watch list"])
    print(f"{args.runs} runs each, medians; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'command':45} {'wall s':>7} {'CPU s':>7} {'CPU / watch list':>17}")
    for name, runs in results.items():
        wall, cpu = statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)
        print(f"{name:45} {wall:7.2f} {cpu:7.2f} {cpu / floor:17.2f}")


if __name__ == "__main__":
    main()
