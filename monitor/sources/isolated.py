"""Run one yt-dlp operation in a child process that cannot outlive its deadline or outgrow its caps.

yt-dlp reads from the network with blocking calls we cannot interrupt, holds
whole pages in memory, and unpacks gzip in memory with some of its HTTP
back-ends; a hostile server can make any of those take minutes or gigabytes.
Inside our own process nothing could stop it, so each listing or download
runs in a child process:

* the parent waits on a pipe and kills the child's whole process group
  (yt-dlp's ffmpeg too) when the deadline passes or when the files in the
  download directory outgrow the size cap, checked every fraction of a second;
* the child's address space may grow by at most `download_memory_mb` beyond
  what it starts with (RLIMIT_AS), so a bomb unpacked in memory ends as a
  MemoryError there, not as the machine swapping;
* the child dies with its parent (PR_SET_PDEATHSIG on Linux).

Children come from a fork server that has imported yt-dlp once, so a child
starts in milliseconds, and is forked from a single-threaded process even
when the caller has threads (the daemon does).  As with any multiprocessing
start method but fork, a script that polls must guard its main module
(`if __name__ == "__main__":`); the `provenance` command and `python -m` do.  The child reports progress
and a picklable result (or a classified error) over a pipe; an exception
never crosses it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
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
# "__main__": a script's main module is imported once, by the fork server (multiprocessing then
# skips it in each child); the generic extractor handles direct files and pages.
PRELOAD = ["__main__", "monitor.sources.ytdlp", "yt_dlp.extractor.generic"]
_lock = threading.Lock()
_context: multiprocessing.context.BaseContext | None = None


@dataclass(frozen=True)
class Bounds:
    deadline: float  # seconds of wall clock
    memory_mb: int | None = None  # the child's address space
    watch_dir: Path | None = None  # whose files may not outgrow...
    max_bytes: int | None = None  # ...this many bytes
    what: str = "the download"  # for messages: "the download of URL", "listing URL"


class Stopped(SourceError):
    """The child was stopped by a bound; `progress` is the last progress it reported."""

    def __init__(self, message: str, kind: str, progress: dict[str, Any]) -> None:
        super().__init__(message, kind)
        self.progress = progress


def context() -> multiprocessing.context.BaseContext:
    """The fork-server context (yt-dlp preloaded), or spawn where there is no fork server."""
    global _context
    with _lock:
        if _context is None:
            methods = multiprocessing.get_all_start_methods()
            _context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
            if "forkserver" in methods:
                _context.set_forkserver_preload(PRELOAD)
        return _context


def run(func: Callable[..., Any], args: tuple, bounds: Bounds) -> Any:
    """`func(*args, report)` in a child within `bounds`; its return value, or `Stopped`.

    `report(dict)` sends progress to the parent (the latest is kept for
    messages).  `func` must catch its own errors and return them as data.
    """
    ctx = context()
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child_main, args=(send, func, args, bounds.memory_mb), daemon=True)
    started = time.monotonic()
    child.start()
    send.close()
    progress: dict[str, Any] = {}
    try:
        while True:
            if receive.poll(POLL_SECONDS):
                try:
                    kind, body = pickle.loads(receive.recv_bytes(MAX_ANSWER_BYTES))
                except EOFError:
                    return _died(child, bounds, progress)
                except OSError as exc:  # longer than MAX_ANSWER_BYTES
                    raise Stopped(f"{bounds.what} gave an answer larger than {format_size(MAX_ANSWER_BYTES)}",
                                  "too-large", progress) from exc
                if kind == "done":
                    return body
                if kind != "progress":  # "crash": a bug on the child's side
                    raise SourceError(f"{bounds.what} failed: {body}", kind="unknown")
                progress = body
            elif not child.is_alive() and not receive.poll():
                return _died(child, bounds, progress)
            if time.monotonic() - started > bounds.deadline:
                raise Stopped(f"{bounds.what} took longer than {bounds.deadline:g} s (item_deadline_seconds)"
                              f"{_so_far(progress, bounds)}", "too-slow", progress)
            if bounds.max_bytes is not None and bounds.watch_dir is not None \
                    and (size := _size(bounds.watch_dir)) > bounds.max_bytes:
                raise Stopped(f"{bounds.what} grew past {format_size(bounds.max_bytes)} (max_download_bytes); "
                              f"stopped at {format_size(size)}", "too-large", progress)
    finally:
        _stop(child)
        receive.close()


def _died(child: multiprocessing.process.BaseProcess, bounds: Bounds, progress: dict[str, Any]) -> Any:
    child.join(5)
    code = child.exitcode
    if code is not None and code < 0 and bounds.memory_mb:
        reason = f"was killed by signal {-code}, perhaps out of memory (download_memory_mb = {bounds.memory_mb})"
        raise Stopped(f"{bounds.what} {reason}", "too-large", progress)
    raise SourceError(f"{bounds.what} ended without an answer (exit code {code})", kind="unknown")


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


def _stop(child: multiprocessing.process.BaseProcess) -> None:
    """Kill the child and everything it started (its process group), then reap it."""
    if child.pid is not None and child.exitcode is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except OSError:
            child.kill()
    child.join(10)


def _child_main(send: Connection, func: Callable[..., Any], args: tuple, memory_mb: int | None) -> None:
    try:
        os.setpgid(0, 0)  # one group with whatever yt-dlp starts (ffmpeg), killed as one
    except OSError:
        pass
    _die_with_parent()
    if resource is not None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if memory_mb:  # on top of what the process maps already (the fork server's modules, its libraries)
            size = _address_space() + memory_mb * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (size, size))
    try:
        result = func(*args, lambda body: send.send_bytes(pickle.dumps(("progress", body))))
        send.send_bytes(pickle.dumps(("done", result)))
    except BaseException as exc:  # noqa: BLE001 - the parent turns it into a failure of the item
        try:
            send.send_bytes(pickle.dumps(("crash", f"{type(exc).__name__}: {exc}"[:500])))
        except BaseException:  # noqa: BLE001 - out of memory even for that: the exit code tells
            pass
    finally:
        send.close()


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
