"""The core commands: ingest a file, find the earliest appearance of a video, serve queries, refingerprint."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from monitor.cli.app import (App, InputProblem, SetupProblem, _is_url, fingerprint_progress,
                             parse_published_at, pass_app, progress_reporter, run_media_job, shown, shown_markup,
                             stderr, stdout, warn_if_unfingerprinted)
from storage.records import SOURCE_USER, NewPost


def _match_rows(result) -> list[dict[str, Any]]:
    from monitor.reports import match_json

    rows = []
    for view in result.matches:
        rows.append({"media_id": view.media.id, "sha256": view.media.sha256,
                     "match": match_json(view.match, result.media.duration or 0.0, view.media.duration)})
    return rows


@click.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--url", help="Where this file was published (default: its file:// URL).")
@click.option("--published-at", metavar="ISO8601",
              help="When the platform says it was published: 2024-03-01T10:15:00Z, or a date for a day claim.")
@click.option("--platform", metavar="NAME", help="Platform name, e.g. tiktok, telegram, youtube.")
@click.option("--uploader", metavar="NAME", help="Who posted it.")
@click.option("--title", help="The post's title or caption.")
@click.option("--allow-deleted", is_flag=True,
              help="Store it even though these bytes (or this post of them) were deleted on purpose before.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@pass_app
def ingest(app: App, path: Path, url: str | None, published_at: str | None, platform: str | None,
           uploader: str | None, title: str | None, allow_deleted: bool, as_json: bool) -> None:
    """Store a video file and one appearance (post) of it, and say what it matches.

    The file is verified and fingerprinted before anything is stored; it is
    kept once in the media store under its SHA-256. Ingesting the same bytes
    again only records another appearance.

    \b
    Example:
      provenance ingest clip.mp4 --url https://t.me/channel/123 --platform telegram \\
          --uploader channel --published-at 2024-03-01T10:15:00Z
    """
    from monitor.jobs.ingest import file_url, ingest_file
    from monitor.reports import detected_edits

    at, precision = parse_published_at(published_at)
    ws = app.workspace()
    if not path.exists():
        raise InputProblem(f"{shown(path)}: no such file")
    post = NewPost(media_id=0, url=url or file_url(path), platform=platform or (None if url else "file"),
                   uploader=uploader, title=title, published_at=at, published_precision=precision,
                   published_source=SOURCE_USER if at else None,
                   raw_metadata={"ingest": {"path": str(path), "published_at_input": published_at}})
    from monitor.jobs.corrections import DeletedBytes

    try:
        with fingerprint_progress(path) as progress:
            result = ingest_file(ws, path, post, progress, allow_deleted=allow_deleted)
    except DeletedBytes as exc:
        raise InputProblem(f"{shown(path)}: {exc}") from exc
    if as_json:
        stdout.print_json(json.dumps({
            "media": {"id": result.media.id, "sha256": result.media.sha256, "duration": result.media.duration,
                      "store_path": result.media.store_path, "new": result.new_media},
            "post": {"id": result.post.id, "url": result.post.url, "new": result.new_post,
                     "published_at": result.post.published_at.isoformat() if result.post.published_at else None,
                     "published_precision": result.post.published_precision},
            "matches": _match_rows(result),
        }))
        return
    state = "stored" if result.new_media else "already stored"
    post_state = "" if result.new_post else " (already stored: nothing added)"
    stdout.print(f"{state}: media {result.media.id} sha256 {result.media.sha256[:16]}… "
                 f"({result.media.duration or 0:.1f} s); post {result.post.id} {shown_markup(result.post.url)}{post_state}")
    for alert in result.alerts:
        stdout.print(f"{shown_markup(alert.message)} (alert {alert.id})", highlight=False)
    if not result.matches:
        stdout.print("matches: none")
        return
    table = Table("media", "sha256", "query coverage", "stored coverage", "segments", "edits", "found by")
    for view in result.matches:
        m = view.match
        if m is None:
            continue
        segs = "; ".join(f"{s.query_start:.1f}–{s.query_end:.1f} ↔ {s.stored_start:.1f}–{s.stored_end:.1f}"
                         for s in m.segments[:3])
        edits = ", ".join(detected_edits(m))
        table.add_row(str(view.media.id), view.media.sha256[:12] + "…", f"{m.query_coverage:.0%}",
                      f"{m.stored_coverage:.0%}", segs, edits, " + ".join(m.routes))
    stdout.print(f"matches: {len(result.matches)}")
    stdout.print(table)


@click.command("find-earliest")
@click.argument("video")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html"]), default="text",
              show_default=True, help="Report format.")
@click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the report to FILE instead of stdout.")
@click.option("--ingest", "also_ingest", is_flag=True,
              help="For a URL: also store the downloaded video and its post.")
@pass_app
def find_earliest_command(app: App, video: str, fmt: str, output: Path | None, also_ingest: bool) -> None:
    """Find every stored appearance of VIDEO (a file or a URL), earliest claim first.

    The query is not stored (unless --ingest with a URL). Appearances are
    ordered by the platform's claimed publication time; a date-only claim on
    the same day as another claim is flagged as ambiguous; posts with no
    claim come last, by when they were first seen. Every format also says
    which appearance most likely derives from which, and which parts of the
    query are matched nowhere; the HTML report is one self-contained page
    with the matched frames, a timeline and a derivation graph (see
    docs/reports.md, which also documents the JSON keys).

    \b
    Example:
      provenance find-earliest repost.mp4
      provenance find-earliest repost.mp4 --format html -o report.html
      provenance find-earliest https://www.tiktok.com/@user/video/123 --ingest --format json
    """
    from monitor.jobs.earliest import find_earliest

    ws = app.workspace()
    warn_if_unfingerprinted(ws)
    if _is_url(video):
        with tempfile.TemporaryDirectory(prefix="provenance-query-") as tmp:
            report = _find_earliest_url(ws, video, Path(tmp), also_ingest)
            text = _render(fmt, report, ws, output)
    else:
        if also_ingest:
            raise click.UsageError("--ingest is for URLs; to store a file use `provenance ingest PATH`")
        path = Path(video)
        if not path.exists():
            raise InputProblem(f"{shown(video)}: no such file (give a path or an http(s) URL)")
        with fingerprint_progress(path) as progress:
            report = find_earliest(ws, path, progress=progress, head_start=_head_start(ws, path, progress))
        text = _render(fmt, report, ws, output)
    if text is None:
        return
    if output:
        output.write_text(text, encoding="utf-8")
        stderr.print(f"report written to {shown_markup(output.resolve())}")
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _head_start(ws, path: Path, progress):
    """The analysis of `path` that `provenance` started before loading this module, if it did."""
    from monitor.cli import prefetch

    started = prefetch.take(path)
    return (lambda: started.analysed(ws.settings, progress)) if started else None


def _render(fmt: str, report, ws, output: Path | None) -> str | None:
    """The report as text for a file, or None once a text table went to the terminal."""
    from monitor.reports import render_report, render_text

    if fmt == "text" and not output:
        render_text(report, stdout)
        return None
    return render_report(fmt, report, ws.store)


def _find_earliest_url(ws, url: str, workdir: Path, also_ingest: bool):
    from monitor.analysis import InputError
    from monitor.jobs.earliest import find_earliest_url

    try:
        with progress_reporter("downloading", None):
            return find_earliest_url(ws, url, workdir, also_ingest)
    except InputError as exc:
        raise InputProblem(f"{shown(url)}: {exc}") from exc


@click.command()
@pass_app
def serve(app: App) -> None:
    """Keep the workspace warm and answer `find-earliest` from other terminals.

    A plain `provenance find-earliest` spends about a second starting up
    (imports, loading the frame index) before it looks at the video.  While
    `serve` runs, `provenance find-earliest` with the same --data-dir, --db
    and --config (or environment) hands its query to this process instead,
    over a socket in the data directory that only its owner can open, and
    gets the same report back.  Without a server, or for other options,
    find-earliest runs by itself as before.  Stop with Ctrl-C or SIGTERM.

    \b
    Example:
      provenance serve &
      provenance find-earliest repost.mp4 --format json
    """
    import signal

    from monitor.serve import invocation, serve_queries, socket_path

    ws = app.workspace()
    stopping = {"now": False}

    def stop(signum, frame) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    config_file, data_dir, db = app.options
    path = socket_path(ws.config.data_dir)
    try:
        answered = serve_queries(ws, path, invocation(db, data_dir, config_file), lambda: stopping["now"],
                                 ready=lambda: stderr.print(f"answering find-earliest on {shown_markup(path)} "
                                                            "(Ctrl-C to stop)"))
    except (RuntimeError, OSError) as exc:
        raise SetupProblem(str(exc)) from exc
    stderr.print(f"stopped after {answered} queries")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@pass_app
def refingerprint(app: App, as_json: bool) -> None:
    """Fingerprint stored media made with other fingerprint settings, so they can be matched again.

    Fingerprints made with different settings are never compared, so after a
    settings change (or an upgrade that changes the algorithm) older media are
    invisible to find-earliest until this runs. Older fingerprints are kept.

    \b
    Example:
      provenance refingerprint
    """
    from monitor.jobs.ingest import refingerprint_stored

    ws = app.workspace()
    run_media_job("refingerprinting", lambda progress: refingerprint_stored(ws, progress), as_json,
                  lambda s: f"{s['fingerprinted']} of {s['todo']} media fingerprinted with {s['settings']}")
