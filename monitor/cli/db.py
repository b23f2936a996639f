"""`provenance db`: migrations and what the database holds."""

from __future__ import annotations

import click

from monitor.cli.app import App, pass_app, shown_markup, stdout


@click.group()
def db() -> None:
    """Database maintenance (migrations also run by themselves on first use).

    \b
    Example:
      provenance --db postgresql://postgres@127.0.0.1/provenance db upgrade
    """


@db.command("upgrade")
@pass_app
def db_upgrade(app: App) -> None:
    """Apply all migrations to the database (on PostgreSQL, also the job queue's schema).

    \b
    Example:
      provenance db upgrade
    """
    from storage.queue_schema import applied_version

    ws = app.workspace()  # opening migrates (and, on PostgreSQL, applies the job queue's schema)
    database = ws.repository.database
    stdout.print(f"database at revision {database.current_revision()} ({database.dialect})")
    if database.dialect == "postgresql":
        stdout.print(f"job queue: procrastinate schema {applied_version(database)}")


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
    stdout.print(f"data dir: {shown_markup(app.config.data_dir)}")
    from monitor.runners.embedded import chosen_runner
    from storage.queue_schema import applied_version, queue_status

    stdout.print(f"revision: {repo.database.current_revision()}")
    stdout.print(f"media: {repo.count_media()}  posts: {len(repo.list_posts())}")
    running = repo.running_polls()
    stdout.print(f"daemon runner: {chosen_runner(app.config)}  polls running: {len(running)}")
    if repo.database.dialect == "postgresql":
        counts = queue_status(repo.database)
        jobs = ", ".join(f"{status} {n}" for status, n in sorted(counts.items()) if status != "workers") or "none"
        stdout.print(f"job queue: procrastinate schema {applied_version(repo.database)}; jobs: {jobs}; "
                     f"workers: {counts.get('workers', 0)}")


@db.command("backfill-signals")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a summary.")
@pass_app
def db_backfill_signals(app: App, as_json: bool) -> None:
    """Compute per-video signals (keypoints...) that stored media lack, from their stored files.

    Media fingerprinted before a signal kind existed, or with an older version
    of it, have frame hashes but no value of the kind, so its route (e.g. the
    keypoints that find rotated or off-centre copies) cannot find them until
    this runs. Frames and stored matches are kept; find-earliest sees the new
    values at once. Safe to run again: media that have their values are skipped.

    \b
    Example:
      provenance db backfill-signals
    """
    from monitor.cli.app import run_media_job
    from monitor.jobs.ingest import backfill_signals

    def line(summary: dict) -> str:
        kinds = ", ".join(f"{name} v{version}" for name, version in summary["kinds"].items()) or "none registered"
        return f"{summary['computed']} of {summary['todo']} media given their signals ({kinds})"

    ws = app.workspace()
    run_media_job("computing signals", lambda progress: backfill_signals(ws, progress), as_json, line)
