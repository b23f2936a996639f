"""Store commands: search posts, look at a post or a media file, footage groups, corrections and deletions.

Thin wrappers over `monitor.jobs.browse` (reading) and
`monitor.jobs.corrections` (changing, each change with its audit row).  A
URL or a hash is printed whole on a line of its own, never wrapped; stored
text is shown with control characters escaped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import click
from rich.text import Text

from monitor.cli.app import (App, InputProblem, output_options, parse_published_at, parse_when, pass_app, print_csv,
                             print_json, shown, shown_markup, stdout)
from storage import NotFound, StorageError
from storage.records import PostSearch

POST_COLUMNS = ["id", "media_id", "sha256", "url", "platform", "uploader", "uploader_id", "title",
                "published_at", "published_precision", "published_source", "first_seen_at", "watch_id",
                "merged_into"]


def iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def claimed(p) -> str:
    if p.published_at is None:
        return "no claim"
    return p.published_at.strftime("%Y-%m-%d" if p.published_precision == "day" else "%Y-%m-%d %H:%M:%S")


def post_json(p, merged_into: int | None = None, sha256: str | None = None) -> dict[str, Any]:
    return {"id": p.id, "media_id": p.media_id, "sha256": sha256, "url": p.url, "platform": p.platform,
            "uploader": p.uploader, "uploader_id": p.uploader_id, "title": p.title,
            "published_at": iso(p.published_at), "published_precision": p.published_precision,
            "published_source": p.published_source, "first_seen_at": iso(p.first_seen_at), "watch_id": p.watch_id,
            "merged_into": merged_into}


def claim_json(c) -> dict[str, Any]:
    return {"id": c.id, "published_at": iso(c.published_at), "precision": c.precision, "source": c.source,
            "correction": c.correction, "author": c.author, "reason": c.reason, "created_at": iso(c.created_at)}


def media_json(m) -> dict[str, Any]:
    return {"id": m.id, "sha256": m.sha256, "size_bytes": m.size_bytes, "store_path": m.store_path,
            "duration": m.duration, "width": m.width, "height": m.height, "fps": m.fps,
            "video_codec": m.video_codec, "audio_codec": m.audio_codec, "container_format": m.container_format,
            "container_created_at": iso(m.container_created_at), "created_at": iso(m.created_at)}


def related_json(related, duration: float) -> list[dict[str, Any]]:
    from monitor.reports import match_json

    return [{"media_id": r.view.media.id, "sha256": r.view.media.sha256,
             "match": match_json(r.view.match, duration, r.view.media.duration),
             "posts": [post_json(p) for p in r.posts]} for r in related]


def deletion_json(d) -> dict[str, Any]:
    return {"id": d.id, "kind": d.kind, "sha256": d.sha256, "media_id": d.media_id, "post_id": d.post_id,
            "url": d.url, "author": d.author, "reason": d.reason, "deleted_at": iso(d.deleted_at),
            "details": d.details}


def _line(text: str, indent: str = "    ") -> None:
    stdout.print(Text(indent + shown(text)), soft_wrap=True, highlight=False)


def print_posts(posts, merged: dict[int, int]) -> None:
    """One line per post, its URL whole on the next (URLs are evidence: never cut or shortened)."""
    for p in posts:
        head = Text(f"post {p.id}", style="bold")
        head.append(f"  {claimed(p)}  · seen {p.first_seen_at:%Y-%m-%d %H:%M}  · {shown(p.platform or '?')}"
                    f"  · {shown(p.uploader or 'uploader unknown')}")
        if p.id in merged:
            head.append(f"  (merged into post {merged[p.id]})", style="yellow")
        stdout.print(head, highlight=False)
        if p.title:
            _line(p.title)
        _line(p.url)


def _resolve_watches(app: App, watch: str | None) -> tuple[int, ...] | None:
    if watch is None:
        return None
    if watch.isdigit():
        return (int(watch),)
    ids = app.workspace().repository.watch_ids_labelled(watch)
    if not ids:
        raise InputProblem(f"no watch is labelled {watch!r}; see `provenance watch list`")
    return tuple(ids)


@click.group(invoke_without_command=True)
@click.option("--url", "url_part", metavar="TEXT", help="Part of the post's URL, e.g. t.me/somechannel.")
@click.option("--uploader", metavar="NAME", help="The uploader's name or id, exactly.")
@click.option("--platform", metavar="NAME", help="The platform, e.g. youtube, telegram, rss.")
@click.option("--watch", metavar="ID|LABEL", help="Only posts a watch stored (its id or its label).")
@click.option("--text", metavar="TEXT", help="Part of the title or description.")
@click.option("--claimed-from", metavar="DATE", help="Claimed (by the platform) on or after this date or time.")
@click.option("--claimed-to", metavar="DATE", help="Claimed before this time (a date: up to the end of that day).")
@click.option("--seen-from", metavar="DATE", help="First seen by us on or after this date or time.")
@click.option("--seen-to", metavar="DATE", help="First seen before this time (a date: up to the end of that day).")
@click.option("--merged", "include_merged", is_flag=True, help="Also list posts merged into another.")
@click.option("--limit", default=50, show_default=True, help="How many posts to list, newest first.")
@output_options
@click.pass_context
def posts(ctx: click.Context, url_part: str | None, uploader: str | None, platform: str | None, watch: str | None,
          text: str | None, claimed_from: str | None, claimed_to: str | None, seen_from: str | None,
          seen_to: str | None, include_merged: bool, limit: int, output: str) -> None:
    """Search the stored posts, newest first (by when we first saw them).

    Every option narrows the search. Posts merged into another are left out
    unless --merged. Subcommands show one post or correct it.

    \b
    Example:
      provenance posts --url t.me/somechannel --claimed-from 2024-03-01
      provenance posts --watch "Harbour Gazette" --text fire --json
      provenance posts show 12
    """
    if ctx.invoked_subcommand is not None:
        return
    from monitor.jobs.browse import search_posts

    app = ctx.find_object(App)
    search = PostSearch(url=url_part, uploader=uploader, platform=platform, watch_ids=_resolve_watches(app, watch),
                        text=text, claimed_from=parse_when(claimed_from, "--claimed-from"),
                        claimed_to=parse_when(claimed_to, "--claimed-to", end=True),
                        seen_from=parse_when(seen_from, "--seen-from"),
                        seen_to=parse_when(seen_to, "--seen-to", end=True), include_merged=include_merged,
                        limit=limit)
    ws = app.workspace()
    found, merged = search_posts(ws, search)
    shas = {m.id: m.sha256 for m in ws.repository.media_by_id(p.media_id for p in found).values()}
    rows = [post_json(p, merged.get(p.id), shas.get(p.media_id)) for p in found]
    if output == "json":
        print_json(rows)
    elif output == "csv":
        print_csv(rows, POST_COLUMNS)
    elif not found:
        stdout.print("no posts found")
    else:
        print_posts(found, merged)


def _known_post(ws, post_id: int):
    from monitor.jobs.browse import post_details

    try:
        return post_details(ws, post_id)
    except NotFound as exc:
        raise InputProblem(str(exc)) from exc


@posts.command("show")
@click.argument("post_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def posts_show(app: App, post_id: int, as_json: bool) -> None:
    """One post with its file, claims (the platform's and people's), revisits and matching posts.

    \b
    Example:
      provenance posts show 12
      provenance posts show 12 --json
    """
    from monitor.reports.observations import history_lines, observations_json

    ws = app.workspace()
    d = _known_post(ws, post_id)
    if as_json:
        print_json({"post": {**post_json(d.post, d.merged_into.into_post_id if d.merged_into else None,
                                         d.media.sha256), "description": d.post.description,
                             "raw_metadata": d.post.raw_metadata},
                    "media": media_json(d.media),
                    "claims": {"platform": {"published_at": iso(d.post.published_at),
                                            "precision": d.post.published_precision,
                                            "source": d.post.published_source},
                               "user": [claim_json(c) for c in d.claims]},
                    "observations": observations_json(d.observations),
                    "merged_into": d.merged_into.into_post_id if d.merged_into else None,
                    "merged_here": [m.post_id for m in d.merged_here],
                    "same_file_posts": [post_json(p) for p in d.same_media_posts],
                    "matches": related_json(d.related, d.media.duration or 0.0),
                    "alerts": [{"id": a.id, "message": a.message, "created_at": iso(a.created_at)}
                               for a in d.alerts]})
        return
    p = d.post
    stdout.print(Text(f"post {p.id}", style="bold"), highlight=False)
    _line(p.url, "  ")
    for name, value in (("platform", p.platform), ("uploader", p.uploader), ("title", p.title),
                        ("watch", f"{d.watch.id} {d.watch.label or ''}" if d.watch else None)):
        if value:
            _line(f"{name}: {value}", "  ")
    stdout.print(f"  platform's claim: {claimed(p)}" + (f" ({p.published_precision}, {p.published_source})"
                                                        if p.published_at else ""), highlight=False)
    for c in d.claims:
        kind = "correction (orders reports)" if c.correction else "user claim"
        _line(f"{kind}: {c.published_at:%Y-%m-%d %H:%M:%S} ({c.precision}) by {c.author} on "
              f"{c.created_at:%Y-%m-%d %H:%M}: {c.reason}", "  ")
    stdout.print(f"  first seen: {p.first_seen_at:%Y-%m-%d %H:%M:%S} UTC", highlight=False)
    if d.merged_into:
        _line(f"merged into post {d.merged_into.into_post_id} by {d.merged_into.author}: {d.merged_into.reason}", "  ")
    for m in d.merged_here:
        _line(f"post {m.post_id} merged into this one by {m.author}: {m.reason}", "  ")
    for line in history_lines(p, d.observations):
        _line(f"revisits: {line}", "  ")
    _line(f"file: media {d.media.id} sha256 {d.media.sha256} ({d.media.duration or 0:.1f} s)", "  ")
    for other in d.same_media_posts:
        stdout.print(f"  same file: post {other.id} ({claimed(other)})", highlight=False)
        _line(other.url)
    _print_related(d.related)
    for a in d.alerts:
        _line(f"alert {a.id}: {a.message}", "  ")


def _print_related(related) -> None:
    from monitor.reports import detected_edits

    for r in related:
        m = r.view.match
        what = "identical file" if m is None else (
            f"{m.query_coverage:.0%} of this / {m.stored_coverage:.0%} of that"
            + (f"; {', '.join(detected_edits(m))}" if detected_edits(m) else ""))
        stdout.print(f"  matches media {r.view.media.id} ({r.view.media.sha256[:12]}…): {shown_markup(what)}", highlight=False)
        for p in r.posts:
            stdout.print(f"    post {p.id} ({claimed(p)})", highlight=False)
            _line(p.url, "      ")


@posts.command("claim")
@click.argument("post_id", metavar="ID", type=int)
@click.option("--published-at", metavar="ISO8601", required=True,
              help="When you say it was published: 2024-03-01T10:15:00Z, or a date for a day claim.")
@click.option("--reason", required=True, help="Why: your evidence (kept in the trail and shown in reports).")
@click.option("--correction", is_flag=True,
              help="The platform's claim is wrong: order reports by this claim instead (both are shown).")
@click.option("--author", metavar="NAME", help="Who says so (default: your user name).")
@click.option("--json", "as_json", is_flag=True, help="Print the claim as JSON.")
@pass_app
def posts_claim(app: App, post_id: int, published_at: str, reason: str, correction: bool, author: str | None,
                as_json: bool) -> None:
    """Add a person's publication time to a post, beside the platform's claim (never replacing it).

    Reports show every such claim as a person's. Without --correction the
    platform's claim stays the order key; with it, this claim orders the
    report and the appearance is flagged "user correction".

    \b
    Example:
      provenance posts claim 12 --published-at 2024-03-01T08:00:00Z --reason "EXIF of the original" --correction
    """
    from monitor.jobs.corrections import Actor, add_claim

    at, precision = parse_published_at(published_at)
    try:
        claim = add_claim(app.workspace(), Actor.at_cli(author), post_id, at, precision, reason, correction)
    except (NotFound, ValueError) as exc:
        raise InputProblem(str(exc)) from exc
    if as_json:
        print_json(claim_json(claim))
        return
    stdout.print(f"claim {claim.id} added to post {post_id}: {at:%Y-%m-%d %H:%M:%S} ({precision})"
                 + (", a correction: reports order by it" if correction else ""), highlight=False)


@posts.command("merge")
@click.argument("post_id", metavar="DUPLICATE", type=int)
@click.option("--into", "into_post_id", metavar="ID", type=int, required=True, help="The post that stays.")
@click.option("--reason", required=True, help="Why they are the same post.")
@click.option("--author", metavar="NAME", help="Who merges them (default: your user name).")
@pass_app
def posts_merge(app: App, post_id: int, into_post_id: int, reason: str, author: str | None) -> None:
    """Mark post DUPLICATE as the same post as another; nothing is deleted.

    The duplicate stays stored, marked merged (with who and why): searches
    and reports list the post it was merged into instead.

    \b
    Example:
      provenance posts merge 14 --into 12 --reason "same Telegram post, t.me/s/ and t.me/ URLs"
    """
    from monitor.jobs.corrections import Actor, merge_posts

    try:
        merge_posts(app.workspace(), Actor.at_cli(author), post_id, into_post_id, reason)
    except (NotFound, ValueError, StorageError) as exc:
        raise InputProblem(str(exc)) from exc
    stdout.print(f"post {post_id} merged into post {into_post_id}")


def deletion_options(command: Callable) -> Callable:
    """`--reason`, `--author`, `--yes` and `--json` of a delete command."""
    command = click.option("--json", "as_json", is_flag=True, help="Print the deletion record as JSON.")(command)
    command = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(command)
    command = click.option("--author", metavar="NAME", help="Who deletes it (default: your user name).")(command)
    return click.option("--reason", required=True, help="Why (kept in the deletion record).")(command)


def _print_deletion(d) -> None:
    removed = d.details.get("removed", {})
    counts = ", ".join(f"{n} {k}" for k, n in removed.items() if n)
    what = f"media {d.media_id} (sha256 {d.sha256})" if d.kind == "media" else f"post {d.post_id}"
    stdout.print(f"deleted {what}" + (f": {counts}" if counts else ""), highlight=False)
    stdout.print(f"deletion {d.id} recorded (by {shown_markup(d.author)}: {shown_markup(d.reason)})", highlight=False)


@posts.command("delete")
@click.argument("post_id", metavar="ID", type=int)
@deletion_options
@pass_app
def posts_delete(app: App, post_id: int, reason: str, author: str | None, yes: bool, as_json: bool) -> None:
    """Delete a post; when it is its file's last post, the file goes too (see `media delete`).

    A deletion record keeps the SHA-256, the URL, who, when and why.

    \b
    Example:
      provenance posts delete 14 --reason "ingested by mistake" --yes
    """
    from monitor.jobs.corrections import Actor, delete_post

    ws = app.workspace()
    post = ws.repository.get_post(post_id)
    if post is None:
        raise InputProblem(f"no post with id {post_id}; search them with `provenance posts`")
    if not yes:
        click.confirm(f"delete post {post_id} ({shown(post.url)})?", abort=True)
    try:
        deletion = delete_post(ws, Actor.at_cli(author), post_id, reason)
    except (NotFound, ValueError) as exc:
        raise InputProblem(str(exc)) from exc
    print_json(deletion_json(deletion)) if as_json else _print_deletion(deletion)


@click.group()
def media() -> None:
    """Stored media files: show one with its posts and matches, or delete one.

    \b
    Example:
      provenance media show 3fa2c1
    """


def _find_media(app: App, sha256: str):
    from monitor.jobs.browse import Ambiguous, find_media

    try:
        return find_media(app.workspace(), sha256)
    except (NotFound, Ambiguous, ValueError) as exc:
        raise InputProblem(str(exc)) from exc


@media.command("show")
@click.argument("sha256", metavar="SHA256")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@pass_app
def media_show(app: App, sha256: str, as_json: bool) -> None:
    """One stored file (a SHA-256, or a unique prefix of at least 4 digits): its posts and matches.

    \b
    Example:
      provenance media show 3fa2c1d0
      provenance media show 3fa2c1d0 --json
    """
    from monitor.jobs.browse import media_details

    ws = app.workspace()
    d = media_details(ws, _find_media(app, sha256).sha256)
    if as_json:
        print_json({"media": media_json(d.media), "fingerprinted": d.fingerprinted,
                    "posts": [post_json(p, sha256=d.media.sha256) for p in d.posts],
                    "matches": related_json(d.related, d.media.duration or 0.0),
                    "tracked": [{"id": t.id, "label": t.label} for t in d.tracked]})
        return
    m = d.media
    stdout.print(Text(f"media {m.id}", style="bold"), highlight=False)
    _line(f"sha256 {m.sha256}", "  ")
    stdout.print(f"  {m.duration or 0:.2f} s, {m.width}×{m.height}, {m.video_codec or '?'}, {m.size_bytes} bytes; "
                 f"stored {m.created_at:%Y-%m-%d %H:%M} UTC" + ("" if d.fingerprinted else
                                                                "; not fingerprinted with the current settings"),
                 highlight=False)
    for t in d.tracked:
        _line(f"tracked as {t.label or '#' + str(t.id)} (by {t.author})", "  ")
    stdout.print(f"  posts: {len(d.posts)}", highlight=False)
    print_posts(d.posts, {})
    _print_related(d.related)


@media.command("delete")
@click.argument("sha256", metavar="SHA256")
@deletion_options
@pass_app
def media_delete(app: App, sha256: str, reason: str, author: str | None, yes: bool, as_json: bool) -> None:
    """Delete a stored file with all its posts: from the store, the frame indexes and the database.

    find-earliest can never return it again. A deletion record keeps its
    SHA-256, its posts' URLs, who, when and why; the same bytes are then
    refused by ingest and polls unless `ingest --allow-deleted`.

    \b
    Example:
      provenance media delete 3fa2c1d0 --reason "privacy request from the person filmed" --yes
    """
    from monitor.jobs.corrections import Actor, delete_media

    ws = app.workspace()
    found = _find_media(app, sha256)
    if not yes:
        posts_of = ws.repository.count_posts_of_media(found.id)
        click.confirm(f"delete media {found.id} (sha256 {found.sha256}) and its {posts_of} post(s)?", abort=True)
    deletion = delete_media(ws, Actor.at_cli(author), found.id, reason)
    print_json(deletion_json(deletion)) if as_json else _print_deletion(deletion)


@click.command()
@click.option("--sort", type=click.Choice(["size", "newest"]), default="size", show_default=True,
              help="Largest groups first, or the ones with the newest post first.")
@click.option("--min-posts", default=2, show_default=True, help="Leave out groups with fewer posts.")
@click.option("--limit", default=50, show_default=True, help="How many groups to list.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead.")
@pass_app
def footage(app: App, sort: str, min_posts: int, limit: int, as_json: bool) -> None:
    """Groups of posts that show the same footage (files linked by stored matches), largest first.

    A group is every stored file reachable from another through the matches
    computed at ingest, with all their posts (merged duplicates not counted).

    \b
    Example:
      provenance footage
      provenance footage --sort newest --json
    """
    from monitor.jobs.browse import footage_groups

    groups = footage_groups(app.workspace(), min_posts=min_posts, sort=sort, limit=limit)
    if as_json:
        print_json([{"id": g.id, "media_ids": g.media_ids, "posts": g.posts, "earliest_claim": iso(g.earliest_claim),
                     "first_seen": iso(g.first_seen), "last_seen": iso(g.last_seen),
                     "tracked": [{"id": t.id, "label": t.label} for t in g.tracked],
                     "sample": [post_json(p) for p in g.sample]} for g in groups])
        return
    if not groups:
        stdout.print("no footage with several posts yet")
        return
    for g in groups:
        head = Text(f"footage {g.id}", style="bold")
        head.append(f"  {g.posts} posts, {len(g.media_ids)} files; earliest claim "
                    f"{g.earliest_claim:%Y-%m-%d %H:%M}" if g.earliest_claim else
                    f"  {g.posts} posts, {len(g.media_ids)} files; no claim")
        head.append(f"; newest seen {g.last_seen:%Y-%m-%d %H:%M}")
        if g.tracked:
            head.append("  tracked: " + ", ".join(shown(t.label or f"#{t.id}") for t in g.tracked), style="green")
        stdout.print(head, highlight=False)
        for p in g.sample[:3]:
            stdout.print(f"    post {p.id} ({claimed(p)})", highlight=False)
            _line(p.url, "      ")


@click.command()
@click.option("--limit", default=50, show_default=True, help="How many of the newest entries to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead.")
@pass_app
def audit(app: App, limit: int, as_json: bool) -> None:
    """The trail of changes people made (corrections, deletions, tracking, accounts), newest first.

    \b
    Example:
      provenance audit --limit 20
    """
    entries = app.workspace().repository.list_audit(limit)
    if as_json:
        print_json([{"id": e.id, "at": iso(e.at), "actor": e.actor, "via": e.via, "action": e.action,
                     "target": e.target, "details": e.details} for e in entries])
        return
    for e in entries:
        reason = e.details.get("reason")
        stdout.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {shown_markup(e.actor)} ({e.via})  {e.action}  {shown_markup(e.target or '')}"
                     + (f": {shown(reason)}" if reason else ""), highlight=False)
