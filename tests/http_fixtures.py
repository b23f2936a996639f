"""A local HTTP server for tests that fetch: no test may touch the internet.

One threaded `http.server` per pytest(-xdist) worker on 127.0.0.1 and a free
port, with routes the tests program: static files (correct Content-Type,
Last-Modified, Range), templates whose `{base}` becomes the server's real
`http://127.0.0.1:PORT` (feeds and pages need absolute URLs), and failure
modes (404, a transfer cut short, a refused connection's URL).

    http_server.add_file("/clip.mp4", path, "video/mp4", last_modified=dt)
    http_server.add_template("/feed.xml", xml_text, "application/rss+xml")
    http_server.add_cut_short("/cut.mp4", data, "video/mp4", send=1000)
    http_server.url("/clip.mp4")
"""

from __future__ import annotations

import email.utils
import re
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

Handler = Callable[[BaseHTTPRequestHandler], None]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients hanging up are expected
        pass


class LocalHTTPServer:
    def __init__(self) -> None:
        self._routes: dict[str, Handler] = {}
        self._server = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def add_route(self, path: str, handler: Handler) -> str:
        """Serve `path` (query ignored) with `handler(request_handler)`; returns its URL."""
        self._routes[path] = handler
        return self.url(path)

    def add_file(
        self, path: str, content: bytes | str | Path, content_type: str, *, last_modified: datetime | None = None
    ) -> str:
        """Static content with Content-Type, optional Last-Modified, HEAD and Range support."""
        data = Path(content).read_bytes() if isinstance(content, Path) else (
            content.encode() if isinstance(content, str) else content)

        def handler(request: BaseHTTPRequestHandler) -> None:
            headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
            if last_modified:
                headers["Last-Modified"] = email.utils.format_datetime(last_modified, usegmt=True)
            status, body = 200, data
            if m := re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("Range", "")):
                start = int(m[1]) if m[1] else max(len(data) - int(m[2] or 0), 0)
                end = int(m[2]) if m[1] and m[2] else len(data) - 1
                if start >= len(data):
                    request.send_response(416)
                    request.send_header("Content-Range", f"bytes */{len(data)}")
                    request.send_header("Content-Length", "0")
                    request.end_headers()
                    return
                end = min(end, len(data) - 1)
                status, body = 206, data[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            request.send_response(status)
            for name, value in headers.items():
                request.send_header(name, value)
            request.send_header("Content-Length", str(len(body)))
            request.end_headers()
            if request.command != "HEAD":
                request.wfile.write(body)

        return self.add_route(path, handler)

    def add_template(
        self, path: str, template: str, content_type: str, *, last_modified: datetime | None = None
    ) -> str:
        """A text page whose `{base}` becomes this server's base URL (other braces are left alone)."""
        return self.add_file(path, template.replace("{base}", self.base), content_type, last_modified=last_modified)

    def add_status(self, path: str, status: int) -> str:
        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_error(status)

        return self.add_route(path, handler)

    def add_cut_short(self, path: str, data: bytes, content_type: str, *, send: int) -> str:
        """Announces len(data) bytes, sends only `send` of them and closes, whatever the Range."""

        def handler(request: BaseHTTPRequestHandler) -> None:
            request.send_response(200)
            request.send_header("Content-Type", content_type)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            if request.command != "HEAD":
                request.wfile.write(data[:send])
                request.wfile.flush()
            request.close_connection = True
            request.connection.shutdown(socket.SHUT_RDWR)

        return self.add_route(path, handler)

    def refused_url(self, path: str = "/") -> str:
        """A 127.0.0.1 URL on a port nothing listens on."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        return f"http://127.0.0.1:{port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        routes = self._routes

        class RouteHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                route = routes.get(self.path.split("?", 1)[0])
                if route is None:
                    self.send_error(404)
                else:
                    route(self)

            do_HEAD = do_GET

            def log_message(self, format: str, *args) -> None:  # keep test output clean
                pass

        return RouteHandler


@pytest.fixture(scope="session")
def http_server():
    """The worker's local HTTP server; routes persist for the session, so use unique paths."""
    server = LocalHTTPServer()
    yield server
    server.close()
