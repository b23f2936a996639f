"""The `provenance` command line: a thin layer over the jobs in `monitor.jobs`.

One click function per command; every help text has an example; errors are
one line that says what to do, with exit code 2 for unusable input (a corrupt
file, a dead URL) and 1 for a problem with the set-up (database, config).
This module only assembles the group: the commands live in `core`, `db`,
`watch`, `calibrate`, `evidence`, `store`, `alerts` and `web`, over the
shared pieces in `app`.
"""

from __future__ import annotations

import logging
import sys

import click

from monitor.cli import alerts, calibrate, core, db, evidence, index, store, watch, web
from monitor.cli.app import EXIT_SETUP, App
from storage import StorageError


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


for command in (core.ingest, core.find_earliest_command, core.serve, core.refingerprint, db.db,
                watch.watch, watch.run_once, watch.polls, watch.daemon, calibrate.calibrate, index.index,
                evidence.export, evidence.verify, evidence.revisit, store.posts, store.media, store.footage,
                store.audit, alerts.track, alerts.tracked, alerts.untrack, alerts.alerts, web.users, web.web):
    cli.add_command(command)


def main() -> None:
    try:
        cli(prog_name="provenance")
    except StorageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETUP)

