"""Run one yt-dlp operation in a child process that cannot outlive its deadline or outgrow its caps.

yt-dlp reads from the network with blocking calls we cannot interrupt, holds
whole pages in memory, and unpacks gzip in memory with some of its HTTP
back-ends; a hostile server can make any of those take minutes or gigabytes.
Inside our own process nothing could stop it, so each listing or download
runs in a child process:

* the caller waits on a socket and kills the child's whole process group
  (yt-dlp's ffmpeg too) when the deadline passes or when the files in the
  download directory outgrow the size cap, checked every fraction of a second;
* the child's address space may grow by at most `download_memory_mb` beyond
  what it starts with (RLIMIT_AS), so a bomb unpacked in memory ends as a
  MemoryError there, not as the machine swapping;
* the child dies with the fork server, and the fork server with the caller.

Children come from a small fork server of our own (`python -m
monitor.sources.isolated`, started on first use with the caller's module
path), which imports yt-dlp once and forks a child per operation: a child
starts in milliseconds, is forked from a single-threaded process even when
the caller has threads (the daemon does), and never re-runs the caller's main
script (multiprocessing's fork server does, once per child).  The child sends
its pid, progress and a picklable result (or a classified error) over a
socket; an exception never crosses it.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

try:
    import resource
except ImportError:  # pragma: no cover - not on Windows
    resource = None  # type: ignore[assignment]

from monitor.failures import SourceError
from monitor.limits import format_size

POLL_SECONDS = 0.2
MAX_ANSWER_BYTES = 64 * 2**20  # an info dict this large is no honest answer
PRELOAD = ["monitor.sources.ytdlp", "yt_dlp.extractor.generic"]  # the generic extractor: direct files and pages
_HEADER = struct.Struct("!Q")


@dataclass(frozen=True)
class Bounds:
    deadline: float  # seconds of wall clock
    memory_mb: int | None = None  # growth of the child's address space
    watch_dir: Path | None = None  # whose files may not outgrow...
    max_bytes: int | None = None  # ...this many bytes
    what: str = "the download"  # for messages: "the download of URL", "listing URL"


class Stopped(SourceError):
    """The child was stopped by a bound; `progress` is the last progress it reported."""

    def __init__(self, message: str, kind: str, progress: dict[str, Any]) -> None:
        super().__init__(message, kind)
        self.progress = progress


def run(func: Callable[..., Any], args: tuple, bounds: Bounds) -> Any:
    """`func(*args, report)` in a child within `bounds`; its return value, or `Stopped`.

    `report(dict)` sends progress to the caller (the latest is kept for
    messages).  `func` must catch its own errors and return them as data.
    """
    started = time.monotonic()
    connection = Connection(_server.fork(pickle.dumps((func, args, bounds.memory_mb))).detach())
    pid: int | None = None
    progress: dict[str, Any] = {}
    try:
        while True:
            if connection.poll(POLL_SECONDS):
                try:
                    kind, body = pickle.loads(connection.recv_bytes(MAX_ANSWER_BYTES))
                except EOFError:
                    raise _no_answer(bounds, progress) from None
                except OSError as exc:  # longer than MAX_ANSWER_BYTES
                    raise Stopped(f"{bounds.what} gave an answer larger than {format_size(MAX_ANSWER_BYTES)}",
                                  "too-large", progress) from exc
                if kind == "done":
                    return body
                if kind == "pid":
                    pid = body
                elif kind == "progress":
                    progress = body
                else:  # "crash": a bug on the child's side
                    raise SourceError(f"{bounds.what} failed: {body}", kind="unknown")
            if time.monotonic() - started > bounds.deadline:
                raise Stopped(f"{bounds.what} took longer than {bounds.deadline:g} s (item_deadline_seconds)"
                              f"{_so_far(progress, bounds)}", "too-slow", progress)
            if bounds.max_bytes is not None and bounds.watch_dir is not None \
                    and (size := _size(bounds.watch_dir)) > bounds.max_bytes:
                raise Stopped(f"{bounds.what} grew past {format_size(bounds.max_bytes)} (max_download_bytes); "
                              f"stopped at {format_size(size)}", "too-large", progress)
    finally:
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # it and whatever it started (ffmpeg); a finished one is gone
            except OSError:
                pass
        connection.close()


def _no_answer(bounds: Bounds, progress: dict[str, Any]) -> SourceError:
    if bounds.memory_mb:
        return Stopped(f"{bounds.what} ended without an answer; killed, or out of memory "
                       f"(download_memory_mb = {bounds.memory_mb})?", "too-large", progress)
    return SourceError(f"{bounds.what} ended without an answer", kind="unknown")


def _so_far(progress: dict[str, Any], bounds: Bounds) -> str:
    done = progress.get("downloaded_bytes")
    if done is None and bounds.watch_dir is not None:
        done = _size(bounds.watch_dir) or None
    if done is None:
        return ""
    total = progress.get("total_bytes")
    return f"; got {format_size(done)}" + (f" of {format_size(total)}" if total else "")


def _size(root: Path) -> int:
    total = 0
    try:
        entries = list(os.scandir(root))
    except OSError:
        return 0
    for entry in entries:
        try:
            total += _size(Path(entry.path)) if entry.is_dir(follow_symlinks=False) else entry.stat().st_size
        except OSError:
            pass
    return total


class _ForkServer:
    """The caller's side of the fork server: started on first use, again if it died."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._socket: socket.socket | None = None

    def fork(self, request: bytes) -> socket.socket:
        """A socket to a new child that runs `request` (a pickled (func, args, memory_mb))."""
        ours, theirs = socket.socketpair()
        try:
            with self._lock:
                if self._process is None or self._process.poll() is not None:
                    self._start()
                assert self._socket is not None
                socket.send_fds(self._socket, [_HEADER.pack(len(request))], [theirs.fileno()])
                self._socket.sendall(request)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        return ours

    def _start(self) -> None:
        if self._socket is not None:
            self._socket.close()
        ours, theirs = socket.socketpair()
        path = [entry for entry in sys.path if entry and os.path.isdir(entry)]  # this process's modules, exactly
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        self._process = subprocess.Popen([sys.executable, "-m", "monitor.sources.isolated", str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self._socket = ours


_server = _ForkServer()


def _serve(fd: int) -> None:
    """The fork server: import yt-dlp once, then fork a child per request until the caller goes."""
    for name in PRELOAD:
        importlib.import_module(name)
    gc.freeze()  # what is loaded now stays shared with the children (no copy-on-write by the collector)
    signal.signal(signal.SIGCHLD, _reap)  # reaped here (not ignored), so their resource use counts as ours
    caller = socket.socket(fileno=fd)
    while True:
        try:
            header, fds, _, _ = socket.recv_fds(caller, _HEADER.size, 1)
            header += _receive(caller, _HEADER.size - len(header))
            request = _receive(caller, _HEADER.unpack(header)[0])
        except (OSError, EOFError, struct.error):
            return  # the caller is gone: so are we, and our children with us
        if os.fork() == 0:
            caller.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                _child_main(fds[0], request)
            finally:
                os._exit(0)
        for child_end in fds:
            os.close(child_end)


def _reap(signum: int, frame: Any) -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _receive(sock: socket.socket, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 2**20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _child_main(fd: int, request: bytes) -> None:
    connection = Connection(fd)
    try:
        os.setpgid(0, 0)  # one group with whatever yt-dlp starts (ffmpeg), killed as one
        _die_with_parent()
        connection.send_bytes(pickle.dumps(("pid", os.getpid())))
        func, args, memory_mb = pickle.loads(request)
        if resource is not None:
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if memory_mb:  # on top of what the process maps already (yt-dlp, Python, libraries)
                size = _address_space() + memory_mb * 2**20
                resource.setrlimit(resource.RLIMIT_AS, (size, size))
        result = func(*args, lambda body: connection.send_bytes(pickle.dumps(("progress", body))))
        connection.send_bytes(pickle.dumps(("done", result)))
    except BaseException as exc:  # noqa: BLE001 - the caller turns it into a failure of the item
        try:
            connection.send_bytes(pickle.dumps(("crash", f"{type(exc).__name__}: {exc}"[:500])))
        except BaseException:  # noqa: BLE001 - out of memory even for that: the caller sees no answer
            pass
    finally:
        connection.close()


def _address_space() -> int:
    """This process's mapped address space in bytes (VmSize; 0 where /proc does not say)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):
        return 0


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass


if __name__ == "__main__":
    _serve(int(sys.argv[1]))
