"""Time and peak memory of `provenance run-once` on hostile feed items (issue 11.2).

Each case is one watch on a local server (`tests/hostile_fixtures.py`)
polled by a fresh `provenance run-once` subprocess with its own data
directory; the script prints its wall time, CPU seconds and peak RSS, and
what the poll recorded.  Peak RSS is the largest resident set of any process
of the run (the command, yt-dlp's process, ffmpeg, ffprobe): the command runs
under a small wrapper that is a child subreaper, so that processes left
behind by the command are reaped there and counted too
(`getrusage(RUSAGE_CHILDREN).ru_maxrss`; on Linux a spawned child starts from
its parent's high-water mark, so this is an upper bound for each process).

Run from the repository root; `--code DIR` runs another checkout (for a
baseline, e.g. `git archive 932c3af | tar -x -C /tmp/base`), `--timeout`
stops a case that runs away (reported as "stopped"), `--urllib` hides the
`requests` package the way a fresh install lacks it (yt-dlp then uses its
urllib handler, which unpacks gzip in memory):

    python benchmarks/hostile_items.py [--cases drip,bomb-feed,...] [--timeout 300] [--code DIR] [--urllib]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.hostile_fixtures import Hostile, measured_run  # noqa: E402
from tests.http_fixtures import LocalHTTPServer  # noqa: E402

CACHE = ROOT / "benchmarks" / ".cache" / "hostile"

def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


def media() -> dict[str, Path]:
    """The hostile files, made once into benchmarks/.cache/hostile."""
    CACHE.mkdir(parents=True, exist_ok=True)
    files = {"clip": CACHE / "clip.mp4", "long_tiny": CACHE / "long_tiny.mp4", "huge_mov": CACHE / "huge.mov",
             "still_png": CACHE / "still.png", "still_jpeg": CACHE / "still.jpg"}
    makers = {
        "clip": ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", "4", "-c:v", "libx264",
                 "-pix_fmt", "yuv420p"],
        "long_tiny": ["-f", "lavfi", "-i", "testsrc=size=16x16:rate=1", "-t", "10800", "-c:v", "libx264",
                      "-preset", "ultrafast", "-pix_fmt", "yuv420p"],
        "huge_mov": ["-f", "lavfi", "-i", "color=c=0x336699:size=16000x16000:rate=1", "-frames:v", "2",
                     "-c:v", "png"],
        "still_png": ["-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1"],
        "still_jpeg": ["-f", "lavfi", "-i", "testsrc2=size=640x480", "-frames:v", "1"],
    }
    for name, path in files.items():
        if not path.exists():
            ffmpeg(*makers[name], str(path))
    return files


def cases(hostile: Hostile, files: dict[str, Path]) -> dict[str, str]:
    """case name -> the watch URL."""
    clip = files["clip"].read_bytes()

    def feed(name: str, url: str) -> str:
        return hostile.feed(f"/{name}/feed.rss", [(name, url)])

    server = hostile.server
    return {
        "drip": feed("drip", hostile.drip("/drip/clip.mp4", clip, rate=10)),
        "bomb-feed": hostile.bomb("/bomb-feed/feed.rss", 2**31, "application/rss+xml"),
        "bomb-enclosure": feed("bomb-enclosure", hostile.bomb("/bomb-enclosure/clip.mp4", 2**31, "video/mp4")),
        "long-tiny": feed("long-tiny", server.add_file("/long-tiny/clip.mp4", files["long_tiny"], "video/mp4")),
        "huge-pixels": feed("huge-pixels", server.add_file("/huge-pixels/clip.mov", files["huge_mov"],
                                                           "video/quicktime")),
        "still-png": feed("still-png", server.add_file("/still-png/clip.mp4", files["still_png"], "video/mp4")),
        "still-jpeg": feed("still-jpeg", server.add_file("/still-jpeg/clip.mp4", files["still_jpeg"], "video/mp4")),
        "huge-feed": hostile.huge_feed("/huge-feed/feed.rss", 5000),
        "normal": feed("normal", server.add_file("/normal/clip.mp4", clip, "video/mp4")),
    }


def run_case(code: Path, url: str, timeout: float, config: Path | None, only_list: bool, urllib: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        text = config.read_text() if config else ""
        if only_list:  # the huge feed's items are 404s: download one, so the case measures the listing
            text += "\n[poll]\nmax_items_per_poll = 1\n"
        (Path(tmp) / "config.toml").write_text(text)
        base = [sys.executable, "-m", "monitor.cli", "--data-dir", tmp, "--config", str(Path(tmp) / "config.toml")]
        path = [str(code)]
        if urllib:  # as in a fresh install: yt-dlp without `requests` uses its urllib handler
            (Path(tmp) / "shadow" / "requests").mkdir(parents=True)
            (Path(tmp) / "shadow" / "requests" / "__init__.py").write_text("raise ImportError('shadowed')\n")
            path.append(str(Path(tmp) / "shadow"))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "PROVENANCE_NO_SERVER": "1"}
        subprocess.run([*base, "watch", "add", url], check=True, capture_output=True, env=env, cwd=code)
        return measured_run([*base, "run-once", "--json"], env=env, cwd=code, timeout=timeout)


def outcome(result: dict) -> str:
    if result["code"] is None:
        return "stopped by --timeout"
    try:
        (summary,), _ = json.JSONDecoder().raw_decode(result["output"][result["output"].index("[\n"):])
    except (ValueError, KeyError):
        return " ".join(result["output"].split())[-200:]
    if summary["listing_error"]:
        return f"listing failed: {summary.get('listing_kind', '?')}: {summary['listing_error'][:150]}"
    errors = "; ".join(f"{e.get('kind', '?')}: {e['error'][:200]}" for e in summary["errors"])
    return (f"{summary['items_seen']} listed in {summary['seconds']['list']:.1f} s, {summary['items_new']} stored"
            + (f", failed: {errors}" if errors else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="normal,drip,bomb-feed,bomb-enclosure,long-tiny,huge-pixels,"
                                           "still-png,still-jpeg,huge-feed")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a case is stopped")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--config", type=Path, help="a config file for the runs")
    parser.add_argument("--urllib", action="store_true",
                        help="hide `requests`, so yt-dlp uses its urllib handler (as in a fresh install)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = media()
    server = LocalHTTPServer()
    urls = cases(Hostile(server), files)
    results = {}
    for name in args.cases.split(","):
        result = run_case(args.code.resolve(), urls[name], args.timeout, args.config, name == "huge-feed", args.urllib)
        result["outcome"] = outcome(result)
        results[name] = result
        if not args.json:
            print(f"{name:15} wall {result['wall']:7.1f} s  cpu {result['cpu']:7.1f} s  "
                  f"peak RSS {result['maxrss_mb']:7.0f} MB  {result['outcome']}", flush=True)
    if args.json:
        print(json.dumps({k: {key: v[key] for key in ("wall", "cpu", "maxrss_mb", "outcome")}
                          for k, v in results.items()}, indent=1))
    server.close()


if __name__ == "__main__":
    main()
