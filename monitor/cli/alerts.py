"""Tracking commands: keep footage on a list (track, tracked, untrack) and read the alerts it raises.

Thin wrappers over `monitor.jobs.alerts`.  An alert is raised by whatever
stores a post (run-once, the daemon, ingest, the web application) when the
post's file matches tracked footage.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from rich.text import Text

from monitor.cli.app import (App, InputProblem, _is_url, fingerprint_progress, pass_app, print_json,
                             progress_reporter, shown, shown_markup, stdout)
from monitor.cli.store import iso
from storage import NotFound


def tracked_json(t, media=None) -> dict:
    return {"id": t.id, "media_id": t.media_id, "sha256": media.sha256 if media else None, "label": t.label,
            "source": t.source, "author": t.author, "active": t.active, "created_at": iso(t.created_at),
            "removed_at": iso(t.removed_at), "removed_by": t.removed_by}


def alert_json(a) -> dict:
    return {"id": a.id, "kind": a.kind, "post_id": a.post_id, "media_id": a.media_id, "tracked_id": a.tracked_id,
            "matched_media_id": a.matched_media_id, "message": a.message, "created_at": iso(a.created_at),
            "acked_at": iso(a.acked_at), "acked_by": a.acked_by,
            "deliveries": [{"target": d.target, "ok": d.ok, "error": d.error, "attempted_at": iso(d.attempted_at)}
                           for d in a.deliveries]}


@click.command()
@click.argument("video")
@click.option("--label", metavar="TEXT", help="A name for this footage, used in alerts.")
@click.option("--author", metavar="NAME", help="Who tracks it (default: your user name).")
@click.option("--allow-deleted", is_flag=True, help="Store it even if these bytes were deleted before.")
@click.option("--json", "as_json", is_flag=True, help="Print the tracked entry as JSON.")
@pass_app
def track(app: App, video: str, label: str | None, author: str | None, allow_deleted: bool, as_json: bool) -> None:
    """Keep footage on the tracked list: alert when a new post shows it.

    VIDEO is a file or a URL; it is stored like `provenance ingest` (a URL
    is downloaded with its post) and its file tracked. From then on, every
    post stored by run-once, the daemon, ingest or the web application whose
    file matches it raises an alert (`provenance alerts`), sent to the
    [alerts] notify URLs.

    \b
    Example:
      provenance track harbour-fire.mp4 --label "harbour fire"
      provenance track https://example.org/v/123 --label "pier video"
    """
    from monitor.analysis import InputError
    from monitor.jobs.alerts import track_file, track_url
    from monitor.jobs.corrections import Actor, DeletedBytes

    ws = app.workspace()
    actor = Actor.at_cli(author)
    try:
        if _is_url(video):
            with tempfile.TemporaryDirectory(prefix="provenance-track-") as tmp, \
                    progress_reporter("downloading", None):
                tracked, result = track_url(ws, actor, video, label, Path(tmp), allow_deleted)
        else:
            path = Path(video)
            if not path.exists():
                raise InputProblem(f"{shown(video)}: no such file (give a path or an http(s) URL)")
            with fingerprint_progress(path) as progress:
                tracked, result = track_file(ws, actor, path, label, allow_deleted=allow_deleted, progress=progress)
    except (InputError, DeletedBytes) as exc:
        raise InputProblem(f"{shown(video)}: {exc}") from exc
    if as_json:
        print_json(tracked_json(tracked, result.media))
        return
    stdout.print(f"tracking {shown_markup(tracked.label or '#' + str(tracked.id))} (tracked {tracked.id}): media "
                 f"{result.media.id} sha256 {result.media.sha256[:16]}…, post {result.post.id}; "
                 f"{len(result.matches)} stored match(es)", highlight=False)


@click.command()
@click.option("--all", "show_all", is_flag=True, help="Also list footage no longer tracked.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead.")
@pass_app
def tracked(app: App, show_all: bool, as_json: bool) -> None:
    """List the tracked footage.

    \b
    Example:
      provenance tracked
    """
    ws = app.workspace()
    items = ws.repository.list_tracked(active_only=not show_all)
    media = ws.repository.media_by_id(t.media_id for t in items)
    if as_json:
        print_json([tracked_json(t, media.get(t.media_id)) for t in items])
        return
    if not items:
        stdout.print("nothing tracked; add footage with `provenance track VIDEO --label NAME`")
        return
    for t in items:
        state = "" if t.active else f" (untracked {t.removed_at:%Y-%m-%d} by {shown(t.removed_by or '')})"
        m = media.get(t.media_id)
        stdout.print(f"{t.id}  {shown_markup(t.label or '(no label)')}  media {t.media_id} "
                     f"{m.sha256[:16] + '…' if m else ''}  by {shown_markup(t.author)} {t.created_at:%Y-%m-%d}{state}",
                     highlight=False)


@click.command()
@click.argument("tracked_id", metavar="ID", type=int)
@click.option("--author", metavar="NAME", help="Who stops tracking it (default: your user name).")
@pass_app
def untrack(app: App, tracked_id: int, author: str | None) -> None:
    """Stop tracking footage (the entry is kept, marked untracked; its file stays stored).

    \b
    Example:
      provenance untrack 2
    """
    from monitor.jobs.alerts import untrack as stop
    from monitor.jobs.corrections import Actor

    try:
        stop(app.workspace(), Actor.at_cli(author), tracked_id)
    except NotFound as exc:
        raise InputProblem(str(exc)) from exc
    stdout.print(f"tracked {tracked_id} is no longer tracked")


@click.group(invoke_without_command=True)
@click.option("--unread", is_flag=True, help="Only alerts nobody acknowledged yet.")
@click.option("--limit", default=50, show_default=True, help="How many of the newest alerts to list.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead.")
@click.pass_context
def alerts(ctx: click.Context, unread: bool, limit: int, as_json: bool) -> None:
    """New posts that matched tracked footage, newest first, with how each was sent.

    \b
    Example:
      provenance alerts --unread
      provenance alerts ack 7
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(App)
    found = app.workspace().repository.list_alerts(unread_only=unread, limit=limit)
    if as_json:
        print_json([alert_json(a) for a in found])
        return
    if not found:
        stdout.print("no alerts" + (" unread" if unread else ""))
        return
    print_alerts(found)


def print_alerts(found) -> None:
    for a in found:
        line = Text(f"alert {a.id}", style="bold")
        line.append(f"  {a.created_at:%Y-%m-%d %H:%M}  {shown(a.message)}")
        if a.acked_at:
            line.append(f"  (acknowledged by {shown(a.acked_by or '')})", style="dim")
        stdout.print(line, highlight=False)
        for d in a.deliveries:
            stdout.print(f"    {'sent' if d.ok else 'not sent'} to {d.target}"
                         + (f": {shown(d.error)}" if d.error else ""), highlight=False)


@alerts.command("ack")
@click.argument("alert_ids", metavar="ID...", type=int, nargs=-1, required=True)
@click.option("--author", metavar="NAME", help="Who read them (default: your user name).")
@pass_app
def alerts_ack(app: App, alert_ids: tuple[int, ...], author: str | None) -> None:
    """Mark alerts as read.

    \b
    Example:
      provenance alerts ack 7 8
    """
    from monitor.jobs.alerts import ack
    from monitor.jobs.corrections import Actor

    for alert_id in alert_ids:
        try:
            ack(app.workspace(), Actor.at_cli(author), alert_id)
        except NotFound as exc:
            raise InputProblem(str(exc)) from exc
    stdout.print(f"acknowledged {len(alert_ids)} alert(s)")
