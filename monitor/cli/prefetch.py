"""A head start for a cold find-earliest: the query video is analysed while the command starts up.

A cold `provenance find-earliest FILE` spends most of a second importing
SQLAlchemy and opening the store before it looks at the video, and analysing
the video (ffprobe, an ffmpeg decode, hashing in Python) takes about as long
again.  Neither needs the other, so the `provenance` command
(`monitor.cli.fastpath`) loads the libraries fingerprinting needs (which the
command needs too), then forks a child that analyses the file while the
parent goes on to import SQLAlchemy and open the store; on two cores the
halves run side by side.  The child runs the command's own analysis
(`monitor.analysis.analyse_file` with `describe=False`, a module that loads
no database code).

The child is only ever a shortcut.  It prints nothing, and whenever it does
not deliver (a missing or corrupt file, a bad config, a crash) or used other
fingerprint settings than the workspace, the command analyses the file itself
as it always did, so errors read the same and keep their exit codes.
"""

from __future__ import annotations

import atexit
import gc
import os
import pickle
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

_started: Prefetch | None = None


class Prefetch:
    """A forked child analysing one query file, and the pipe its answer comes back on."""

    def __init__(self, path: Path, pid: int, fd: int) -> None:
        self.path = path
        self.pid: int | None = pid
        self._answers = os.fdopen(fd, "rb")

    def analysed(self, settings: Any, progress: Callable[[float, float | None], None] | None = None):
        """The child's `AnalysedFile` for `self.path`, or None when the caller must analyse it itself.

        Waits for the child, passing its progress on to `progress`.
        """
        parts = self._wait(progress)
        if parts is None or parts["settings"] != settings:
            return None
        return parts["analysed"]

    def _wait(self, progress: Callable[[float, float | None], None] | None) -> dict[str, Any] | None:
        parts = None
        try:
            while parts is None:
                kind, *body = pickle.load(self._answers)
                if kind == "done":
                    parts = body[0]
                elif progress:
                    progress(*body)
        except Exception:
            pass  # the child failed or died: nothing usable came
        finally:
            self._reap(stop=parts is None)
        return parts

    def discard(self) -> None:
        """Stop the child if it still runs (its answer is not needed) and collect it."""
        self._reap(stop=True)

    def _reap(self, stop: bool) -> None:
        self._answers.close()
        if self.pid is None:
            return
        pid, self.pid = self.pid, None
        try:
            if stop:
                os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
        except OSError:
            pass  # already gone


def start(video: str, config_file: str | None, data_dir: str | None, db: str | None) -> None:
    """Fork a child that analyses the file `video`, when this process can fork safely.

    The options are the command's global options, as `monitor.cli` will
    read them, so the child uses the same fingerprint settings.
    """
    global _started
    if not hasattr(os, "fork") or threading.active_count() > 1 or not os.path.isfile(video):
        return  # no fork with other threads running: a lock one of them holds would never be released
    _import_analysis_modules()
    read_fd, write_fd = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_fd)
        os.close(write_fd)
        return  # out of processes or memory: the command analyses the file itself
    if pid == 0:
        os.close(read_fd)
        _child(Path(video), (config_file, data_dir, db), write_fd)
    os.close(write_fd)
    _started = Prefetch(Path(video), pid, read_fd)
    atexit.register(_started.discard)


def _import_analysis_modules() -> None:
    """Import what the analysis needs before forking: the command imports these anyway, so the child gets them free."""
    import monitor.analysis  # noqa: F401
    import monitor.config  # noqa: F401


def take(path: Path) -> Prefetch | None:
    """The analysis started for `path` in this process, if any; it is handed out once."""
    global _started
    started, _started = _started, None
    if started is not None and started.path != Path(path):
        started.discard()
        return None
    return started


def _child(path: Path, options: tuple, fd: int) -> None:
    """The forked side: analyse, send the result, exit without running the parent's exit handlers."""
    code = 1
    try:
        gc.enable()  # `monitor.cli.fastpath` forks while loading modules, with collection off
        signal.signal(signal.SIGTERM, _stop)
        silent = os.open(os.devnull, os.O_RDWR)
        for stream in (0, 1, 2):
            os.dup2(silent, stream)
        with os.fdopen(fd, "wb") as answers:
            def send(message: tuple) -> None:
                pickle.dump(message, answers)
                answers.flush()

            send(("done", _analyse(path, options, lambda done, total: send(("progress", done, total)))))
        code = 0
    finally:
        os._exit(code)


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(1)  # so that `finally` blocks stop ffmpeg and remove the temporary link


def _analyse(path: Path, options: tuple, progress: Callable[[float, float | None], None]) -> dict[str, Any]:
    """`monitor.analysis.analyse_file(path, ..., describe=False)` with the command's settings, and those settings.

    Errors are not sent: the command repeats the analysis to report them.
    """
    from monitor.analysis import analyse_file
    from monitor.config import load_config

    config = load_config(*options)
    settings = config.fingerprint_settings
    return {"settings": settings,
            "analysed": analyse_file(path, settings, progress, describe=False, limits=config.limits)}
