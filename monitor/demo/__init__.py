"""The main job end to end, offline: watch a news feed, poll it, find where an edited clip first appeared.

Why a demo module: it is the README's first command (`make demo`) and it must
work on a laptop without network or accounts.  It plays a small news site on
127.0.0.1 that publishes an original clip and re-uploads of it (mirrored,
letterboxed, blurred 9:16) plus an unrelated clip, as an RSS feed with the
original dated earliest; then it drives the real `provenance` commands
in-process against a fresh data dir (never the user's own data or database).

    python -m monitor.demo [--data-dir ./demo-data]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

from monitor.config import Config, load_config
from monitor.jobs.earliest import find_earliest
from monitor.workspace import Workspace
from monitor.reports import render_html
from monitor.synth.samples import EDITS, make_edit, make_source_clip

MARKER = ".provenance-demo"  # a data dir holding this file was made by the demo and may be wiped
FIRST_PUBLISHED = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
CLIP_SECONDS = 6.0
# (file, title, edit applied to the original or None for the original itself)
POSTS = [
    ("original.mp4", "Harbour fire, filmed from the pier", None),
    ("mirror.mp4", "REPOST: harbour fire (flipped)", "mirror"),
    ("letterbox.mp4", "Harbour fire - watch till the end", "letterbox"),
    ("blurpad_9x16.mp4", "harbour fire vertical #news", "blurpad_9x16"),
    ("unrelated.mp4", "City council meeting highlights", None),
]
QUERY = "blurpad_9x16.mp4"
DEMO_CONFIG = """# written by `python -m monitor.demo`
[ytdlp]
retries = 0
socket_timeout = 10
"""


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hanging up mid-file are expected
        pass


def make_site(site_dir: Path) -> list[Path]:
    """The clips the fixture site publishes, generated with ffmpeg."""
    site_dir.mkdir(parents=True, exist_ok=True)
    original = make_source_clip(site_dir / "original.mp4", seed=1, duration=CLIP_SECONDS)
    files = [original]
    for name, _, edit in POSTS[1:]:
        if edit:
            files.append(make_edit(original, site_dir / name, EDITS[edit]))
        else:
            files.append(make_source_clip(site_dir / name, seed=3, duration=CLIP_SECONDS, scene_order=(2, 0, 3, 1)))
    return files


def write_feed(site_dir: Path, base: str) -> None:
    """An RSS 2.0 feed of the posts, absolute enclosure URLs, the original dated earliest."""
    items = []
    for n, (name, title, _) in enumerate(POSTS):
        published = FIRST_PUBLISHED + timedelta(hours=5 * n, minutes=7 * n)
        items.append(
            f"<item><title>{escape(title)}</title><guid isPermaLink=\"false\">demo-{n}</guid>"
            f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate>"
            f"<enclosure url=\"{base}/{name}\" type=\"video/mp4\" length=\"{(site_dir / name).stat().st_size}\"/></item>")
    (site_dir / "feed.rss").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Harbour Gazette video</title>'
        f"<link>{base}/</link><description>Local news clips</description>{''.join(items)}</channel></rss>",
        encoding="utf-8")


def serve(site_dir: Path) -> ThreadingHTTPServer:
    """The fixture site on 127.0.0.1 and a free port, in a background thread."""
    server = _QuietServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(site_dir)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def fresh_data_dir(data_dir: Path) -> None:
    """Empty `data_dir` if the demo made it; refuse to touch anything else."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise SystemExit(f"error: {data_dir} exists and was not made by the demo; "
                             "give an empty or new directory with --data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by `python -m monitor.demo`; deleted and re-made on the next run\n")


def provenance(base_args: list[str], *args: str) -> None:
    """Run one `provenance` command in-process, as the console script would."""
    from monitor.cli.main import cli

    print(f"\n$ provenance {' '.join(args)}", flush=True)
    cli.main([*base_args, *args], prog_name="provenance", standalone_mode=False)


def run_demo(data_dir: Path) -> Path:
    """Everything the module doc says; returns the HTML report's path."""
    data_dir = data_dir.resolve()
    fresh_data_dir(data_dir)
    site_dir = data_dir / "site"
    print(f"making sample clips in {site_dir} ...", flush=True)
    make_site(site_dir)
    server = serve(site_dir)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        write_feed(site_dir, base)
        config = data_dir / "demo.toml"
        config.write_text(DEMO_CONFIG, encoding="utf-8")
        base_args = ["--data-dir", str(data_dir), "--db", f"sqlite:///{data_dir / 'provenance.db'}",
                     "--config", str(config)]
        provenance(base_args, "watch", "add", f"{base}/feed.rss", "--every", "1h", "--label", "Harbour Gazette")
        provenance(base_args, "run-once")
    finally:
        server.shutdown()
        server.server_close()
    query = site_dir / QUERY
    print(f"\n$ provenance find-earliest {query} --format html -o {data_dir / 'report.html'}", flush=True)
    return write_report(load_config(config, data_dir, base_args[3]), query, data_dir / "report.html")


def write_report(config: Config, query: Path, report_path: Path) -> Path:
    """find-earliest on `query`: the HTML report, and its gist on stdout."""
    ws = Workspace.open(config)
    try:
        report = find_earliest(ws, query)
        report_path.write_text(render_html(report, ws.store), encoding="utf-8")
    finally:
        ws.close()
    earliest = report.earliest
    print(f"{len(report.appearances)} appearances of {query.name} found")
    if earliest is not None:
        print(f"earliest: {earliest.post.url} ({earliest.post.title}), "
              f"published {earliest.post.published_at:%Y-%m-%d %H:%M UTC} by its {earliest.post.published_source}")
        for a in report.appearances[1:]:
            edits = "identical file" if a.match is None else ("mirrored" if a.match.mirrored else "same footage")
            print(f"  later: {a.post.url} ({a.post.published_at:%Y-%m-%d %H:%M UTC}; {edits})")
    print(f"HTML report: {report_path}")
    return report_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m monitor.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path("demo-data"),
                        help="a new or demo-made directory for the demo's database, media and report "
                             "(default: ./demo-data)")
    run_demo(parser.parse_args(argv).data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
