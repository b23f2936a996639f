"""A hostile web for tests: what a stranger's feed can throw at a poll.

Routes on the session's local server (`tests.http_fixtures`), each under a
path the test chooses:

    hostile = Hostile(http_server)
    hostile.drip("/slow.mp4", data, rate=2000)       # announces len(data), sends `rate` bytes a second
    hostile.bomb("/bomb.xml", 2**30, "application/rss+xml")   # ~1 MB of gzip that unpacks to 1 GiB
    hostile.redirect_loop("/loop")                  # 302 to itself with a new query, for ever
    hostile.huge_feed("/huge.rss", 5000)            # an RSS feed of 5,000 items
    hostile.feed("/evil.rss", items)                # raw titles and URLs (control characters and all)

and generated media (`hostile_media`, made once per session with ffmpeg):
a tiny video three hours long, still images (PNG, JPEG) and a picture of
many pixels.  The cut transfer and the refused port are in `tests.http_fixtures`.
`measured_run` runs a command and reports the peak RSS of every process it
started (the benchmark `benchmarks/hostile_items.py` uses it too).
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest

from tests.http_fixtures import LocalHTTPServer
from tests.video_fixtures import made_once

MIB = 2**20
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, OSError)

# Titles and URLs a hostile feed may carry (raw: the feed writer does not sanitise them).
HOSTILE_TITLES = {
    "ansi": "\x1b[31mRED ALERT\x1b[0m\x07 title with a bell",
    "rtl": "harmless \u202egpj.exe\u202c video",
    "html": "<script>alert('x')</script><img src=x onerror=alert(1)>",
    "markup": "[bold red]not markup[/] [/] [link=javascript:alert(1)]click[/link]",
    "long": "very long title " * 8000,
    "nul-ish": "title with \x00 nul and \x0b vertical tab and \x85 next line",
}


# Runs a command as a child subreaper, so processes the command leaves behind (a fork server and
# its children) are reaped here and counted; then reports wall time and rusage of them all.
_MEASURE = r"""
import ctypes, json, os, resource, signal, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
cmd, timeout = json.loads(sys.argv[1]), float(sys.argv[2])
start = time.monotonic()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
try:
    out, _ = proc.communicate(timeout=timeout)
    code = proc.returncode
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate()
    code = None
wall = time.monotonic() - start
me = str(os.getpid())
while True:  # orphans are our children now: stop them (after a timeout), then reap them all
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1] == me:
                os.kill(int(pid), signal.SIGKILL if code is None else 0)
        except OSError:
            pass
    try:
        os.wait()
    except ChildProcessError:
        break
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024,
                  "code": code, "output": out}))
"""


def measured_run(cmd: list[str], *, env: dict[str, str] | None = None, cwd: Path | str | None = None,
                 timeout: float = 600) -> dict:
    """Run `cmd`; its wall time, CPU seconds and the peak RSS (MB) of the largest process it started.

    On Linux a process started by another begins at its parent's high-water
    mark, so the peak is an upper bound for each process.  `code` is None
    when `timeout` stopped the command.
    """
    done = subprocess.run([sys.executable, "-c", _MEASURE, json.dumps(cmd), str(timeout)], capture_output=True,
                          text=True, env=env, cwd=cwd, check=True)
    return json.loads(done.stdout)


def deflate_bomb(unpacked: int, container: str = "gzip") -> bytes:
    """`unpacked` zero bytes (rounded up to MiB) compressed ~1000:1, built in well under a second.

    One MiB of zeros is compressed once with a full flush (no reference
    reaches back past it) and the block repeated; `container` is "gzip"
    (Content-Encoding: gzip) or "zlib" (Content-Encoding: deflate).
    """
    zeros = bytes(MIB)
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = squeeze.compress(zeros) + squeeze.flush(zlib.Z_FULL_FLUSH)
    count = -(-unpacked // MIB)
    body = block * count + zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    if container == "zlib":
        adler = 1
        for _ in range(count):
            adler = zlib.adler32(zeros, adler)
        return b"\x78\xda" + body + struct.pack(">I", adler)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00" + struct.pack("<I", int(time.time())) + b"\x02\xff"
    return header + body + struct.pack("<II", crc, (count * MIB) & 0xFFFFFFFF)


def rss(items: list[tuple[str, str]], title: str = "Feed") -> str:
    """An RSS 2.0 feed of (title, enclosure URL) items; both are escaped for XML, nothing else."""
    body = "".join(f"<item><title>{escape(t)}</title><pubDate>Fri, 01 Mar 2024 12:00:00 GMT</pubDate>"
                   f"<enclosure url={quoteattr(u)} type=\"video/mp4\" length=\"1\"/></item>" for t, u in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{escape(title)}</title>' \
           f"{body}</channel></rss>"


class Hostile:
    """Hostile routes on a `LocalHTTPServer`."""

    def __init__(self, server: LocalHTTPServer) -> None:
        self.server = server

    def url(self, path: str) -> str:
        return self.server.url(path)

    def drip(self, path: str, data: bytes, content_type: str = "video/mp4", *, rate: int = 2000) -> str:
        """Announces len(data) bytes, then sends `rate` bytes a second in small writes (ten a second at most)."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            if request.command == "HEAD":
                return
            step = max(1, rate // 10)
            try:
                for start in range(0, len(data), step):
                    request.wfile.write(data[start:start + step])
                    request.wfile.flush()
                    time.sleep(step / rate)
            except CLIENT_GONE:
                pass
            request.close_connection = True

        return self.server.add_route(path, handler)

    def bomb(self, path: str, unpacked: int, content_type: str, *, encoding: str = "gzip") -> str:
        """A response whose Content-Encoding (gzip or deflate) unpacks to `unpacked` bytes of zeros."""
        body = deflate_bomb(unpacked, "zlib" if encoding == "deflate" else "gzip")
        return self.encoded(path, body, content_type, encoding)

    def encoded(self, path: str, body: bytes, content_type: str, encoding: str) -> str:
        """`body` sent as is with the given Content-Encoding, whatever the client asked for."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Encoding", encoding)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            if request.command == "HEAD":
                return
            try:
                for start in range(0, len(body), 64 * 1024):
                    request.wfile.write(body[start:start + 64 * 1024])
            except CLIENT_GONE:
                request.close_connection = True

        return self.server.add_route(path, handler)

    def redirect_loop(self, path: str) -> str:
        """Redirects to itself with a new query string each time: every URL new, no end."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            hops = int(request.path.partition("?n=")[2] or 0)
            request.send_response(302)
            request.send_header("Location", f"{path}?n={hops + 1}")
            request.send_header("Content-Length", "0")
            request.end_headers()

        return self.server.add_route(path, handler)

    def feed(self, path: str, items: list[tuple[str, str]], *, title: str = "Feed") -> str:
        return self.server.add_file(path, rss(items, title).encode("utf-8"), "application/rss+xml")

    def huge_feed(self, path: str, count: int) -> str:
        """An RSS feed of `count` items whose enclosures are distinct URLs on this server."""
        base = self.server.url(path.rsplit("/", 1)[0])
        return self.feed(path, [(f"Item {n}", f"{base}/item-{n}.mp4") for n in range(count)])


@pytest.fixture(scope="session")
def hostile(http_server) -> Hostile:
    return Hostile(http_server)


@dataclass
class HostileMedia:
    long_tiny: Path  # 16x16, 1 fps, three hours: a few hundred KB that decode for minutes
    still_png: Path
    still_jpeg: Path
    big_picture: Path  # 1920x1088, two frames: more pixels than small test limits allow


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="session")
def hostile_media(tmp_path_factory) -> HostileMedia:
    return made_once(tmp_path_factory, "hostile", _make_hostile_media)


def _make_hostile_media(root: Path) -> HostileMedia:
    media = HostileMedia(long_tiny=root / "long_tiny.mp4", still_png=root / "still.png",
                         still_jpeg=root / "still.jpg", big_picture=root / "big_picture.mov")
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=16x16:rate=1", "-t", "10800", "-c:v", "libx264",
            "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(media.long_tiny))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", str(media.still_png))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", str(media.still_jpeg))
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=1920x1088:rate=2", "-frames:v", "2", "-c:v", "mjpeg",
            str(media.big_picture))
    return media
