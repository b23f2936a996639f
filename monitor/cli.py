"""The `provenance` command line: a thin layer over the jobs in `monitor/`.

One click function per command; every help text has an example; errors are
one line that says what to do, with exit code 2 for unusable input (a corrupt
file, a dead URL) and 1 for a problem with the set-up (database, config).
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from monitor.config import Config, ConfigError, load_config
from monitor.display import shown
from storage import StorageError
from storage.records import PRECISION_DAY, PRECISION_SECOND, SOURCE_USER, NewPost

EXIT_INPUT = 2
EXIT_SETUP = 1

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True)


class InputProblem(click.ClickException):
    exit_code = EXIT_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class SetupProblem(click.ClickException):
    exit_code = EXIT_SETUP

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class App:
    """Lazily opened settings and workspace for one invocation."""

    def __init__(self, db: str | None, data_dir: str | None, config_file: str | None) -> None:
        self.options = (config_file, data_dir, db)
        self._config: Config | None = None
        self._workspace = None

    @property
    def config(self) -> Config:
        if self._config is None:
            config_file, data_dir, db = self.options
            try:
                self._config = load_config(config_file, data_dir, db)
            except ConfigError as exc:
                raise SetupProblem(str(exc)) from exc
        return self._config

    def workspace(self):
        from monitor.pipeline import Workspace

        if self._workspace is None:
            try:
                self._workspace = Workspace.open(self.config)
            except StorageError as exc:
                raise SetupProblem(str(exc)) from exc
        return self._workspace

    def close(self) -> None:
        if self._workspace is not None:
            self._workspace.close()


pass_app = click.make_pass_decorator(App)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--db", metavar="URL", envvar="PROVENANCE_DB", show_envvar=True,
              help="Database URL (default: SQLite at DATA_DIR/provenance.db), e.g. postgresql://user@host/db.")
@click.option("--data-dir", metavar="DIR", envvar="PROVENANCE_DATA_DIR", show_envvar=True,
              help="Where media files and the default database live (default: ~/.local/share/provenance).")
@click.option("--config", "config_file", metavar="FILE", envvar="PROVENANCE_CONFIG", show_envvar=True,
              help="A config.toml with settings (see the repository's config.toml for every key).")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.version_option(package_name="provenance")
@click.pass_context
def cli(ctx: click.Context, db: str | None, data_dir: str | None, config_file: str | None, verbose: int) -> None:
    """Find where and when footage first appeared, and which posts re-upload it.

    \b
    Example:
      provenance ingest clip.mp4 --url https://example.org/v/1 --published-at 2024-03-01T10:00:00Z
      provenance find-earliest repost.mp4
    """
    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)],
                        format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    app = App(db, data_dir, config_file)
    ctx.obj = app
    ctx.call_on_close(app.close)


def parse_published_at(value: str | None) -> tuple[datetime | None, str | None]:
    """ISO 8601 date or date-time to (UTC time, precision); a bare date is a day claim."""
    if not value:
        return None, None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC), PRECISION_DAY
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or date-time "
                                 "(e.g. 2024-03-01 or 2024-03-01T10:15:00Z)", param_hint="--published-at")
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return at, PRECISION_SECOND


@contextmanager
def progress_reporter(label: str, total: float | None, unit: str = "s"):
    """A progress bar on stderr for long work, silent when stderr is not a terminal."""
    if not stderr.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                  TimeRemainingColumn(), console=stderr, transient=True) as bar:
        task = bar.add_task(label, total=total or None, detail="")

        def update(done: float, new_total: float | None = None) -> None:
            end = new_total or bar.tasks[0].total
            detail = f"{done:.0f}/{end:.0f} {unit}" if end else f"{done:.0f} {unit}"
            bar.update(task, completed=done, detail=detail, **({"total": new_total} if new_total else {}))

        yield update


@contextmanager
def fingerprint_progress(path: Path):
    """Progress over the video's duration while it is analysed; input errors become exit 2."""
    from monitor.pipeline import InputError

    try:
        with progress_reporter(f"fingerprinting {shown(path.name)[:40]}", None) as progress:
            yield progress
    except InputError as exc:
        raise InputProblem(f"{shown(path)}: {exc}") from exc


def _analyse(ws, path: Path, describe: bool):
    from monitor.pipeline import analyse_file

    with fingerprint_progress(path) as progress:
        return analyse_file(path, ws.settings, progress, ws.exif, describe=describe)


def _match_rows(result) -> list[dict[str, Any]]:
    from monitor.report import match_json

    rows = []
    for view in result.matches:
        rows.append({"media_id": view.media.id, "sha256": view.media.sha256,
                     "match": match_json(view.match, result.media.duration or 0.0, view.media.duration)})
    return rows


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--url", help="Where this file was published (default: its file:// URL).")
@click.option("--published-at", metavar="ISO8601",
              help="When the platform says it was published: 2024-03-01T10:15:00Z, or a date for a day claim.")
@click.option("--platform", metavar="NAME", help="Platform name, e.g. tiktok, telegram, youtube.")
@click.option("--uploader", metavar="NAME", help="Who posted it.")
@click.option("--title", help="The post's title or caption.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@pass_app
def ingest(app: App, path: Path, url: str | None, published_at: str | None, platform: str | None,
           uploader: str | None, title: str | None, as_json: bool) -> None:
    """Store a video file and one appearance (post) of it, and say what it matches.

    The file is verified and fingerprinted before anything is stored; it is
    kept once in the media store under its SHA-256. Ingesting the same bytes
    again only records another appearance.

    \b
    Example:
      provenance ingest clip.mp4 --url https://t.me/channel/123 --platform telegram \\
          --uploader channel --published-at 2024-03-01T10:15:00Z
    """
    from monitor.pipeline import file_url, ingest_file
    from monitor.report import detected_edits

    at, precision = parse_published_at(published_at)
    ws = app.workspace()
    if not path.exists():
        raise InputProblem(f"{shown(path)}: no such file")
    post = NewPost(media_id=0, url=url or file_url(path), platform=platform or (None if url else "file"),
                   uploader=uploader, title=title, published_at=at, published_precision=precision,
                   published_source=SOURCE_USER if at else None,
                   raw_metadata={"ingest": {"path": str(path), "published_at_input": published_at}})
    with fingerprint_progress(path) as progress:
        result = ingest_file(ws, path, post, progress)
    if as_json:
        stdout.print_json(json.dumps({
            "media": {"id": result.media.id, "sha256": result.media.sha256, "duration": result.media.duration,
                      "store_path": result.media.store_path, "new": result.new_media},
            "post": {"id": result.post.id, "url": result.post.url,
                     "published_at": result.post.published_at.isoformat() if result.post.published_at else None,
                     "published_precision": result.post.published_precision},
            "matches": _match_rows(result),
        }))
        return
    state = "stored" if result.new_media else "already stored"
    stdout.print(f"{state}: media {result.media.id} sha256 {result.media.sha256[:16]}… "
                 f"({result.media.duration or 0:.1f} s); post {result.post.id} {shown(result.post.url)}")
    if not result.matches:
        stdout.print("matches: none")
        return
    table = Table("media", "sha256", "query coverage", "stored coverage", "segments", "edits")
    for view in result.matches:
        m = view.match
        if m is None:
            continue
        segs = "; ".join(f"{s.query_start:.1f}–{s.query_end:.1f} ↔ {s.stored_start:.1f}–{s.stored_end:.1f}"
                         for s in m.segments[:3])
        edits = ", ".join(detected_edits(m))
        table.add_row(str(view.media.id), view.media.sha256[:12] + "…", f"{m.query_coverage:.0%}",
                      f"{m.stored_coverage:.0%}", segs, edits)
    stdout.print(f"matches: {len(result.matches)}")
    stdout.print(table)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


@cli.command("find-earliest")
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
    claim come last, by when they were first seen.

    \b
    Example:
      provenance find-earliest repost.mp4
      provenance find-earliest repost.mp4 --format html -o report.html
      provenance find-earliest https://www.tiktok.com/@user/video/123 --ingest --format json
    """
    from monitor.earliest import find_earliest

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
        stderr.print(f"report written to {shown(output.resolve())}")
    else:
        click.echo(text, nl=not text.endswith("\n"))


def _head_start(ws, path: Path, progress):
    """The analysis of `path` that `provenance` started before loading this module, if it did."""
    from monitor import prefetch

    started = prefetch.take(path)
    return (lambda: started.analysed(ws.settings, progress)) if started else None


def _render(fmt: str, report, ws, output: Path | None) -> str | None:
    from monitor.report import render_html, render_json, render_markdown, render_text

    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report, ws.store)
    if output:
        console = Console(record=True, width=140, file=open("/dev/null", "w"))
        render_text(report, console)
        return console.export_text()
    render_text(report, stdout)
    return None


def render_to_string(fmt: str, report, ws) -> str:
    """The report in `fmt` as a string (text without colours)."""
    return _render(fmt, report, ws, Path("/dev/null"))


def _find_earliest_url(ws, url: str, workdir: Path, also_ingest: bool):
    from monitor.earliest import find_earliest
    from monitor.pipeline import ingest_analysed
    from monitor.sources import ListedItem, SourceError, YtDlpSource

    source = YtDlpSource(ws.config.ytdlp)
    try:
        with progress_reporter("downloading", None):
            item = source.download(ListedItem(url=url, archive_key=None), workdir)
    except SourceError as exc:
        raise InputProblem(f"{shown(url)}: {exc}") from exc
    analysed = _analyse(ws, item.path, describe=also_ingest)
    if also_ingest:
        existing = item.post.archive_key and ws.repository.get_post_by_archive_key(item.post.archive_key)
        if not existing:
            ingest_analysed(ws, analysed, item.post.to_new_post(0))
    report = find_earliest(ws, item.path, query_url=url, analysed=analysed)
    report.query_path = Path(url)
    return report


@cli.command()
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
                                 ready=lambda: stderr.print(f"answering find-earliest on {shown(path)} "
                                                            "(Ctrl-C to stop)"))
    except (RuntimeError, OSError) as exc:
        raise SetupProblem(str(exc)) from exc
    stderr.print(f"stopped after {answered} queries")


@cli.command()
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
    from monitor.pipeline import refingerprint_stored

    ws = app.workspace()
    with progress_reporter("refingerprinting", None, unit="media") as progress:
        summary = refingerprint_stored(ws, (lambda n, total: progress(n, total)) if progress else None)
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    stdout.print(f"{summary['fingerprinted']} of {summary['todo']} media fingerprinted with {summary['settings']}")
    for failure in summary["failed"]:
        stdout.print(f"failed: media {failure['media_id']} ({failure['sha256'][:12]}…): {shown(failure['error'])}")


def warn_if_unfingerprinted(ws) -> None:
    """Say so when stored media cannot be matched because they lack current fingerprints."""
    missing = ws.repository.media_without_fingerprint(ws.settings_id)
    if missing:
        stderr.print(f"warning: {len(missing)} stored media have no fingerprint with the current settings "
                     "and cannot be matched; run `provenance refingerprint`")


@cli.group()
def db() -> None:
    """Database maintenance (migrations also run by themselves on first use).

    \b
    Example:
      provenance --db postgresql://postgres@127.0.0.1/provenance db upgrade
    """


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply all migrations to the database.

    \b
    Example:
      provenance db upgrade
    """
    ws = app.workspace()  # opening migrates
    database = ws.repository.database
    stdout.print(f"database at revision {database.current_revision()} ({database.dialect})")


@db.command("downgrade")
@click.argument("revision", default="base")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_app
def db_downgrade(app: App, revision: str, yes: bool) -> None:
    """Undo migrations down to REVISION (default: base, an empty database). Destroys data.

    \b
    Example:
      provenance db downgrade 0001_core --yes
    """
    from storage import open_database
    from storage.db import default_database_url

    config = app.config
    database = open_database(config.db_url or default_database_url(config.data_dir), migrate=False)
    if not yes:
        click.confirm(f"downgrade {database.dialect} database to {revision}? tables will be dropped", abort=True)
    database.downgrade(revision)
    stdout.print(f"database at revision {database.current_revision() or 'base'}")


@db.command("status")
@pass_app
def db_status(app: App) -> None:
    """Show the database, its revision and what it holds.

    \b
    Example:
      provenance db status
    """
    ws = app.workspace()
    repo = ws.repository
    stdout.print(f"database: {repo.database!r}")
    stdout.print(f"data dir: {shown(app.config.data_dir)}")
    stdout.print(f"revision: {repo.database.current_revision()}")
    stdout.print(f"media: {repo.count_media()}  posts: {len(repo.list_posts())}")


# Monitoring commands (watch, run-once, daemon) live in their own module and register on `cli`.
from monitor import cli_watch  # noqa: E402,F401
from monitor import cli_calibrate  # noqa: E402,F401


def main() -> None:
    try:
        cli(prog_name="provenance")
    except StorageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETUP)


if __name__ == "__main__":
    # `python -m monitor.cli`: run the imported module's group, on which cli_watch registered its commands
    from monitor.cli import main as imported_main

    imported_main()
