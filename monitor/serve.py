"""A warm find-earliest: one process keeps the workspace open and answers queries.

`provenance find-earliest` spends about a second importing its libraries and
loading the frame index before it looks at the video.  `provenance serve`
pays that once: it opens the workspace, then answers find-earliest requests
on a Unix socket in the data directory (`query.sock`, readable by its owner
only).  The `provenance` command (`monitor.cli.fastpath`) sends a plain
`find-earliest` there when a server for the same data directory, database and
config is listening, and runs the full command itself otherwise, so the
answer is the same either way; only the time differs.

The protocol is one JSON object per connection each way:
request ``{"video", "format", "ingest", "cwd", "invocation"}``, answer
``{"exit_code", "text", "error"}`` (`text` is the rendered report).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("provenance.serve")

SOCKET_NAME = "query.sock"
MAX_REQUEST_BYTES = 1 << 16


def socket_path(data_dir: Path) -> Path:
    return Path(data_dir) / SOCKET_NAME


def default_data_dir() -> Path:
    """`monitor.config.default_data_dir`, without importing what that module imports."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "provenance"


def invocation(db: str | None, data_dir: str | None, config_file: str | None) -> dict[str, str]:
    """What decides which store a command uses, as given: options first, then the environment.

    A client and a server started with the same options (or environment)
    give the same value; the server answers only such clients.
    """
    chosen_dir = data_dir or os.environ.get("PROVENANCE_DATA_DIR")
    config = config_file or os.environ.get("PROVENANCE_CONFIG")
    return {"db": db or os.environ.get("PROVENANCE_DB", ""),
            "data_dir": str(Path(chosen_dir).expanduser().resolve() if chosen_dir else default_data_dir()),
            "config": str(Path(config).expanduser().resolve()) if config else ""}


def answer(ws, request: dict[str, Any]) -> dict[str, Any]:
    """Run one find-earliest request against an open workspace; never raises."""
    from monitor.analysis import InputError
    from monitor.display import shown
    from monitor.jobs.earliest import find_earliest, find_earliest_url
    from monitor.reports import render_report

    video, fmt = str(request.get("video", "")), str(request.get("format", "text"))
    if fmt not in ("text", "json", "markdown", "html"):
        return {"exit_code": 2, "error": f"unknown format {fmt!r}"}
    try:
        if video.startswith(("http://", "https://")):
            with tempfile.TemporaryDirectory(prefix="provenance-query-") as tmp:
                try:
                    report = find_earliest_url(ws, video, Path(tmp), bool(request.get("ingest")))
                except InputError as exc:
                    return {"exit_code": 2, "error": f"{shown(video)}: {exc}"}
                return {"exit_code": 0, "text": render_report(fmt, report, ws.store)}
        path = Path(request.get("cwd", "/")) / video
        if not path.exists():
            return {"exit_code": 2, "error": f"{shown(video)}: no such file (give a path or an http(s) URL)"}
        report = find_earliest(ws, path)
        return {"exit_code": 0, "text": render_report(fmt, report, ws.store)}
    except InputError as exc:
        return {"exit_code": 2, "error": getattr(exc, "message", None) or str(exc)}
    except Exception as exc:  # the server keeps serving; the client is told
        log.exception("find-earliest failed for %s", shown(video))
        return {"exit_code": 1, "error": f"the query server failed: {exc}"}


def serve_queries(ws, path: Path, invocation_key: dict[str, str], should_stop: Callable[[], bool] = lambda: False,
                  ready: Callable[[], None] | None = None) -> int:
    """Answer find-earliest requests on `path` until `should_stop()`; returns how many were answered."""
    ws.indexes()  # load the frame indexes now, not on the first query
    if path.exists():
        if _listening(path):
            raise RuntimeError(f"another `provenance serve` is already answering on {path}")
        path.unlink()  # left behind by a server that was killed
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    answered = 0
    try:
        old_umask = os.umask(0o177)  # the socket is its owner's alone
        try:
            server.bind(str(path))
        finally:
            os.umask(old_umask)
        server.listen(8)
        server.settimeout(0.5)
        if ready:
            ready()
        while not should_stop():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(30)
                try:
                    request = _receive(conn)
                except (OSError, ValueError) as exc:
                    log.warning("bad request: %s", exc)
                    continue
                if request.get("invocation") != invocation_key:
                    reply = {"exit_code": None, "error": "this server answers for another store"}
                else:
                    reply = answer(ws, request)
                    answered += 1
                try:
                    conn.sendall(json.dumps(reply).encode() + b"\n")
                except OSError as exc:
                    log.warning("client went away: %s", exc)
    finally:
        server.close()
        path.unlink(missing_ok=True)
    return answered


def _receive(conn: socket.socket) -> dict[str, Any]:
    data = b""
    while not data.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
        if len(data) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("request is not a JSON object")
    return request


def _listening(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()
