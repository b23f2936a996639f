"""Monitoring commands: watch, run-once, polls, daemon (registered on the `provenance` group).

Thin wrappers: the jobs are `monitor.jobs.poll.poll_all` and `monitor.runners.embedded.run_daemon`;
the watch table is the repository's.  The daemon and these commands share only
the database, so a watch added, paused or removed here reaches a running
daemon on its next refresh.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.console import Console
from rich.table import Table
from rich.text import Text

from monitor.cli.app import App, InputProblem, SetupProblem, pass_app, shown, shown_markup, stderr, stdout
from storage import NotFound

MIN_INTERVAL_SECONDS = 10
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$", re.IGNORECASE)


def parse_interval(text: str) -> int:
    """Seconds in "90s", "30m", "2h", "1d" or plain "600"; at least MIN_INTERVAL_SECONDS."""
    m = _DURATION.match(str(text))
    if not m:
        raise click.BadParameter(f"{text!r} is not a duration; write e.g. 90s, 30m, 2h or 1d", param_hint="--every")
    seconds = round(float(m[1]) * _UNITS[(m[2] or "s").lower()])
    if seconds < MIN_INTERVAL_SECONDS:
        raise click.BadParameter(f"{text!r} is too often; poll at most every {MIN_INTERVAL_SECONDS}s",
                                 param_hint="--every")
    return seconds


def format_interval(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at else None


def _watch_json(watch) -> dict[str, Any]:
    return {"id": watch.id, "kind": watch.kind, "url": watch.url, "label": watch.label,
            "interval_seconds": watch.interval_seconds, "every": format_interval(watch.interval_seconds),
            "enabled": watch.enabled, "created_at": _iso(watch.created_at),
            "last_polled_at": _iso(watch.last_polled_at)}


def _known_watch(app: App, watch_id: int):
    watch = app.repository().get_watch(watch_id)
    if watch is None:
        raise InputProblem(f"no watch with id {watch_id}; see `provenance watch list`")
    return watch


@click.group()
def watch() -> None:
    """Accounts, channels, feeds and posts to poll for new videos.

    \b
    Example:
      provenance watch add https://example.org/news/video.rss --every 30m --label "Example news"
      provenance watch list
    """


@watch.command("add")
@click.argument("url")
@click.option("--every", metavar="DURATION",
              help="How often to poll: 90s, 30m, 2h, 1d (default: [watch] default_interval, 30m).")
@click.option("--label", metavar="TEXT", help="A name for people, e.g. the outlet or account.")
@click.option("--no-check", is_flag=True,
              help="Add without looking at the URL first (e.g. while offline); its first poll says what is wrong.")
@click.option("--json", "as_json", is_flag=True, help="Print the new watch as JSON.")
@pass_app
def watch_add(app: App, url: str, every: str | None, label: str | None, no_check: bool, as_json: bool) -> None:
    """Watch URL: a post, an account/channel/playlist, an RSS or Atom feed, or a Telegram channel.

    The kind of watch is decided from the URL; `t.me/NAME` is the channel's
    public preview. A URL already watched (in any spelling: case, www.,
    trailing slash, tracking parameters) is refused, naming the watch. Unless
    --no-check, one quick request ([watch] check_seconds) looks at what the
    URL serves: a page without any video, or a feed URL that is no feed, is
    refused with the reason. Platform URLs (a TikTok account, a YouTube
    channel) are not fetched here; their first poll checks them.

    \b
    Example:
      provenance watch add https://www.youtube.com/feeds/videos.xml?channel_id=UC... --every 1h
      provenance watch add t.me/examplechannel --label "Example channel"
    """
    from monitor.failures import SourceError, availability
    from monitor.jobs.watches import WatchExists, add_watch, check_fetcher

    interval = parse_interval(every or app.config.section("watch")["default_interval"])
    repository = app.repository()
    try:
        added = add_watch(repository, url, interval, label, check=not no_check,
                          fetcher=None if no_check else check_fetcher(app.config))
    except WatchExists as exc:
        raise InputProblem(shown(exc)) from exc
    except SourceError as exc:  # refused, or the look failed (said once, by what happened)
        hint = "; to add it anyway (offline, the site down), use --no-check" \
            if availability(exc.kind) == "unreachable" else ""
        raise InputProblem(shown(f"{exc}{hint}")) from exc  # URLs from the page itself, too
    watch = added.watch
    if as_json:
        stdout.print_json(json.dumps({**_watch_json(watch), "note": added.note}))
        return
    stdout.print(f"watch {watch.id} added: {watch.kind} {shown_markup(watch.url)} every {format_interval(interval)}",
                 highlight=False)
    if added.note:
        stdout.print(f"note: {shown_markup(added.note)}", highlight=False)


@watch.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_app
def watch_list(app: App, as_json: bool) -> None:
    """List every watch with its interval, state and last poll.

    \b
    Example:
      provenance watch list
      provenance watch list --json
    """
    watches = app.repository().list_watches()
    if as_json:
        stdout.print_json(json.dumps([_watch_json(w) for w in watches]))
        return
    if not watches:
        stdout.print("no watches yet; add one with `provenance watch add URL`")
        return
    print_watches(stdout, watches, app.repository().post_counts_by_watch())


def print_watches(console: Console, watches: list, posts: dict[int, int]) -> None:
    """One line per watch, its URL whole on the next: a URL is evidence, never cut into pieces or shortened."""
    rows = [(str(w.id), w.kind, format_interval(w.interval_seconds), "enabled" if w.enabled else "paused",
             _iso(w.last_polled_at) or "never", str(posts.get(w.id, 0)), shown(w.label or "")) for w in watches]
    header = ("id", "kind", "every", "state", "last polled", "posts", "label")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for n, row in enumerate([header, *rows]):
        line = Text("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1],
                    style="bold" if n == 0 else "")
        console.print(line)
        if n:
            console.print(Text("    " + shown(watches[n - 1].url)), soft_wrap=True)


@watch.command("remove")
@click.argument("watch_id", metavar="ID", type=int)
@pass_app
def watch_remove(app: App, watch_id: int) -> None:
    """Stop watching and forget the watch's polls; the posts it stored stay.

    \b
    Example:
      provenance watch remove 3
    """
    _known_watch(app, watch_id)
    app.repository().remove_watch(watch_id)
    stdout.print(f"watch {watch_id} removed (its stored posts are kept)")


def _set_enabled(app: App, watch_id: int, enabled: bool) -> None:
    _known_watch(app, watch_id)
    app.repository().set_watch_enabled(watch_id, enabled)
    stdout.print(f"watch {watch_id} {'resumed' if enabled else 'paused'}")


@watch.command("pause")
@click.argument("watch_id", metavar="ID", type=int)
@pass_app
def watch_pause(app: App, watch_id: int) -> None:
    """Stop polling a watch for now (run-once --watch ID still polls it).

    \b
    Example:
      provenance watch pause 3
    """
    _set_enabled(app, watch_id, False)


@watch.command("resume")
@click.argument("watch_id", metavar="ID", type=int)
@pass_app
def watch_resume(app: App, watch_id: int) -> None:
    """Poll a paused watch again on its schedule.

    \b
    Example:
      provenance watch resume 3
    """
    _set_enabled(app, watch_id, True)


@contextmanager
def poll_progress() -> Iterator[Any]:
    """A bar per watch on stderr while polling, silent when stderr is not a terminal."""
    if not stderr.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=stderr, transient=True) as bar:
        tasks: dict[int, Any] = {}

        def update(event) -> None:
            if event.watch.id not in tasks:
                tasks[event.watch.id] = bar.add_task(f"watch {event.watch.id}", total=None)
            bar.update(tasks[event.watch.id], completed=event.done, total=event.total or None,
                       description=f"watch {event.watch.id} {shown_markup(event.url or event.watch.url)[-50:]}")

        yield update


def _summary_json(s) -> dict[str, Any]:
    return {"watch_id": s.watch.id, "url": s.watch.url, "poll_id": s.poll_id, "status": s.status,
            "items_seen": s.items_seen, "items_new": s.items_new, "items_failed": s.items_failed,
            "items_waiting": s.items_waiting, "items_already": s.items_already, "errors": s.errors,
            "listing_error": s.listing_error, "listing_kind": s.listing_kind,
            "seconds": {k: round(v, 3) for k, v in s.seconds.items()}}


def _print_summary(s) -> None:
    head = f"watch {s.watch.id} {shown_markup(s.watch.url)}: "
    if not s.ran:
        stdout.print(head + f"[red]listing failed[/red] ({s.listing_kind}): {shown_markup(s.listing_error)}",
                     highlight=False)
        return
    waiting = f", {s.items_waiting} waiting to retry" if s.items_waiting else ""
    already = f", {s.items_already} stored meanwhile by another process" if s.items_already else ""
    interrupted = " (interrupted)" if s.interrupted else ""
    stdout.print(head + f"{s.items_seen} listed, {s.items_new} new, {s.items_failed} failed{waiting}{already}"
                 f"{interrupted}", highlight=False)
    for error in s.errors:
        stdout.print(f"  failed ({error.get('kind', 'unknown')}): {shown_markup(error['url'])}: "
                     f"{shown_markup(error['error'])}", highlight=False)


def quiet_failure_logs() -> None:
    """Silence the poll's and yt-dlp's warnings about failures this command prints itself."""
    for name in ("provenance.poll", "yt_dlp"):
        logging.getLogger(name).setLevel(logging.ERROR)


@click.command("run-once")
@click.option("--watch", "watch_ids", metavar="ID", type=int, multiple=True,
              help="Poll only this watch (paused or not); repeat for several. Default: every enabled watch.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of poll summaries.")
@pass_app
def run_once(app: App, watch_ids: tuple[int, ...], as_json: bool) -> None:
    """Poll watches now: download and store what is new, and say what failed.

    Exits 0 when polling ran, even if some items failed (they are retried on
    later polls, with backoff); exits 1 when nothing could run (no watches,
    or every listing failed).

    \b
    Example:
      provenance run-once
      provenance run-once --watch 3 --json
    """
    from monitor.jobs.poll import default_source, poll_all
    from monitor.jobs.recovery import PollHeartbeat, recover
    from monitor.runners.embedded import stop_on_signals
    from storage.processes import holder_id

    ws = app.workspace()
    for watch_id in watch_ids:
        _known_watch(app, watch_id)
    if not logging.getLogger().isEnabledFor(logging.INFO):
        quiet_failure_logs()  # each failure is printed below, once; -v shows the log lines too
    try:
        source = default_source(ws.config)
    except ValueError as exc:
        raise SetupProblem(f"[ytdlp] settings: {exc}") from exc
    holder = holder_id()
    recover(ws, holder)
    stop = stop_on_signals()
    alerts_before = ws.repository.last_alert_id()
    with poll_progress() as progress, PollHeartbeat(ws, holder):
        try:
            summaries = poll_all(ws, list(watch_ids) or None, source=source, progress=progress, stop=stop,
                                 holder=holder)
        except NotFound as exc:
            raise InputProblem(str(exc)) from exc
    raised = ws.repository.list_alerts(after_id=alerts_before, limit=1000)[::-1]
    if as_json:
        stdout.print_json(json.dumps([_summary_json(s) for s in summaries]))
    else:
        for s in summaries:
            _print_summary(s)
        for alert in raised:  # new items that match known footage
            stdout.print(f"{shown_markup(alert.message)} (alert {alert.id})", highlight=False)
    if not summaries:
        raise SetupProblem("no enabled watches to poll; add one with `provenance watch add URL`")
    if not any(s.ran for s in summaries):
        raise SetupProblem("no watch could be listed (see the errors above); check the URLs and the network")


@click.command("polls")
@click.option("--watch", "watch_id", metavar="ID", type=int, help="Only this watch's polls.")
@click.option("--limit", default=20, show_default=True, help="How many of the newest polls to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_app
def polls(app: App, watch_id: int | None, limit: int, as_json: bool) -> None:
    """Recent polls, newest first: when, how many items were new or failed, and why.

    \b
    Example:
      provenance polls --watch 3
      provenance polls --json --limit 100
    """
    if watch_id is not None:
        _known_watch(app, watch_id)
    records = app.repository().list_polls(watch_id, limit=limit)
    if as_json:
        stdout.print_json(json.dumps([
            {"id": p.id, "watch_id": p.watch_id, "started_at": _iso(p.started_at), "finished_at": _iso(p.finished_at),
             "status": p.status, "items_seen": p.items_seen, "items_new": p.items_new,
             "items_failed": p.items_failed, "errors": p.errors} for p in records]))
        return
    if not records:
        stdout.print("no polls yet; run `provenance run-once` or `provenance daemon`")
        return
    table = Table("poll", "watch", "started", "took", "status", "seen", "new", "failed", "errors")
    for p in records:
        took = f"{(p.finished_at - p.started_at).total_seconds():.1f} s" if p.finished_at else "running"
        errors = "\n".join(f"{shown_markup(e.get('url') or '')}: {shown_markup(e.get('error') or '')}"
                           for e in p.errors[:5])
        if len(p.errors) > 5:
            errors += f"\n(+{len(p.errors) - 5} more)"
        table.add_row(str(p.id), str(p.watch_id), _iso(p.started_at), took, p.status, str(p.items_seen),
                      str(p.items_new), str(p.items_failed), errors)
    stdout.print(table)


@click.command("daemon")
@click.option("--exit-if-locked", is_flag=True,
              help="Embedded runner: exit (code 1) when another daemon works on this database, instead of "
                   "waiting as standby.")
@pass_app
def daemon(app: App, exit_if_locked: bool) -> None:
    """Poll every enabled watch on its schedule until stopped (SIGTERM or Ctrl-C).

    Watches added, paused or removed meanwhile are picked up without a
    restart. On SQLite one daemon per database works; another one started on
    the same database waits as standby and takes over when the first stops
    or dies. On PostgreSQL any number of daemons, on any number of machines,
    share the polls and items through the job queue (`[daemon] runner`
    chooses). Stopping lets the items in hand finish, so nothing is half-stored.

    \b
    Example:
      provenance -v daemon
      provenance --db postgresql://provenance@db/provenance daemon
    """
    from monitor.config import ConfigError
    from monitor.runners.embedded import LockHeld, run_daemon, stop_on_signals
    from storage import StorageError

    provenance_log = logging.getLogger("provenance")
    if not provenance_log.isEnabledFor(logging.INFO):
        provenance_log.setLevel(logging.INFO)  # a daemon's log is its output: polls and items by default
    try:
        run_daemon(app.config, stop_event=stop_on_signals(), exit_if_locked=exit_if_locked)
    except (LockHeld, ConfigError, StorageError) as exc:
        raise SetupProblem(str(exc)) from exc
    except ValueError as exc:
        raise SetupProblem(f"[ytdlp] settings: {exc}") from exc
