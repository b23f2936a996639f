"""Which process owns a temporary file, a work directory or a running poll, and whether it is still alive.

Leftovers of a killed process (a `.part` file in the media store, an item's
work directory, a poll left "running") must be cleaned up by the next
process, but never while their owner is still working on them.  So every such
thing carries its owner's host name and pid: on the same host a dead pid
proves the owner gone at once; another host's owner can only be judged by a
heartbeat or by age, which the callers do.
"""

from __future__ import annotations

import os
import re
import socket
import uuid

_TAG = re.compile(r"(?P<host>[A-Za-z0-9._-]+)\+(?P<pid>\d+)\+")


def hostname() -> str:
    """This machine's name, reduced to characters safe in a file name."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "localhost"


def file_tag() -> str:
    """`<host>+<pid>+`: the prefix that marks a temporary file or directory as this process's."""
    return f"{hostname()}+{os.getpid()}+"


def holder_id() -> str:
    """`<host>:<pid>:<random>`: names this process in rows it holds (locks, running polls)."""
    return f"{hostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def tagged_owner_alive(name: str, prefix: str) -> bool | None:
    """For a name `<prefix><file_tag>...`: whether its owner lives (None: untagged, or another host)."""
    match = _TAG.match(name[len(prefix):]) if name.startswith(prefix) else None
    if match is None or match["host"] != hostname():
        return None
    return pid_alive(int(match["pid"]))


def holder_alive(holder: str) -> bool | None:
    """For a `holder_id`: whether that process lives (None: another host, or not a holder id)."""
    parts = holder.split(":")
    if len(parts) != 3 or not parts[1].isdigit() or parts[0] != hostname():
        return None
    return pid_alive(int(parts[1]))
