"""The `provenance` command: hands a plain find-earliest to a running `provenance serve`.

Only the standard library is imported here, so asking a warm server costs a
few hundredths of a second.  Anything else, or when no server for the same
store is listening, runs the full command (`monitor.cli`), which gives the
same answer.  A find-earliest of a file that no server answers gets a head
start: its analysis begins in a forked child (`monitor.cli.prefetch`) while the
full command loads.
"""

from __future__ import annotations

import gc
import json
import os
import socket
import sys
from pathlib import Path

from monitor.serve import invocation, socket_path

_GLOBAL = ("--db", "--data-dir", "--config")
_QUERY_TIMEOUT = 600.0  # seconds: fingerprinting a long video, or downloading one


def plain_find_earliest(argv: list[str]) -> dict | None:
    """The options of `[--db X] [--data-dir X] [--config X] find-earliest VIDEO [--format F] [-o FILE] [--ingest]`.

    None for anything else (help, verbosity, other commands), which the full
    command handles.
    """
    options: dict[str, str] = {}
    args = list(argv)

    def take(name: str, arg: str) -> bool:
        if arg in (name,) and args:
            options[name] = args.pop(0)
            return True
        if arg.startswith(name + "="):
            options[name] = arg.split("=", 1)[1]
            return True
        return False

    while args and args[0] != "find-earliest":
        arg = args.pop(0)
        if not any(take(name, arg) for name in _GLOBAL):
            return None
    if not args:
        return None
    args.pop(0)
    video = None
    while args:
        arg = args.pop(0)
        if arg == "--ingest":
            options["--ingest"] = "1"
        elif take("--format", arg) or take("--output", arg):
            continue
        elif arg == "-o" and args:
            options["--output"] = args.pop(0)
        elif arg.startswith("-") or video is not None:
            return None
        else:
            video = arg
    if video is None or options.get("--format", "text") not in ("text", "json", "markdown", "html"):
        return None
    options["video"] = video
    return options


def ask_server(options: dict) -> int | None:
    """The exit code after a server answered, or None when no server for this store did."""
    key = invocation(options.get("--db"), options.get("--data-dir"), options.get("--config"))
    path = socket_path(Path(key["data_dir"]))
    if not path.exists():
        return None
    request = {"video": options["video"], "format": options.get("--format", "text"),
               "ingest": "--ingest" in options, "cwd": os.getcwd(), "invocation": key}
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(2.0)
            conn.connect(str(path))
            conn.settimeout(_QUERY_TIMEOUT)
            conn.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
    except (OSError, ValueError):
        return None  # not listening, or gone: do it ourselves
    if reply.get("exit_code") is None:
        return None  # a server for another store
    if reply["exit_code"] != 0:
        print(f"error: {reply.get('error', 'the query failed')}", file=sys.stderr)
        return int(reply["exit_code"])
    text = reply.get("text") or ""
    output = options.get("--output")
    if output:
        target = Path(output)
        target.write_text(text, encoding="utf-8")
        print(f"report written to {target.resolve()}", file=sys.stderr)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def main() -> None:
    options = plain_find_earliest(sys.argv[1:])
    if options is not None and os.environ.get("PROVENANCE_NO_SERVER") != "1":
        code = ask_server(options)
        if code is not None:
            sys.exit(code)
    gc.disable()  # loading the command makes next to no garbage, and looking for it costs ~8% of the load
    if options is not None and _local_query(options):
        from monitor.cli import prefetch

        prefetch.start(options["video"], options.get("--config"), options.get("--data-dir"), options.get("--db"))
    from monitor.cli.main import main as full_command

    gc.enable()
    try:
        full_command()
    finally:
        gc.freeze()  # the process is ending: spare its shutdown collecting over every loaded module (~0.1 s)


def _local_query(options: dict) -> bool:
    """A find-earliest of a file (not a URL, which is downloaded first), whose analysis can start now."""
    return "--ingest" not in options and not options["video"].startswith(("http://", "https://"))
