"""The `provenance` command line: a thin layer over the jobs in `monitor.jobs`.

One click function per command; every help text has an example; errors are
one line that says what to do, with exit code 2 for unusable input (a corrupt
file, a dead URL) and 1 for a problem with the set-up (database, config).
This module only assembles the group: the commands live in `core`, `db`,
`watch`, `calibrate`, `evidence`, `store`, `alerts` and `web`, over the
shared pieces in `app`.  A command's module is imported when that command
runs (`LazyGroup`): importing all of them (numpy, the web application...)
took a second before `watch add` could start.
"""

from __future__ import annotations

import logging
import sys

import click

from monitor.cli.app import EXIT_SETUP, App
from storage import StorageError

COMMANDS = {  # name -> "module:function" in monitor.cli
    "ingest": "core:ingest", "find-earliest": "core:find_earliest_command", "serve": "core:serve",
    "refingerprint": "core:refingerprint", "db": "db:db", "watch": "watch:watch", "run-once": "watch:run_once",
    "polls": "watch:polls", "daemon": "watch:daemon", "calibrate": "calibrate:calibrate", "index": "index:index",
    "export": "evidence:export", "verify": "evidence:verify", "revisit": "evidence:revisit", "posts": "store:posts",
    "media": "store:media", "footage": "store:footage", "audit": "store:audit", "track": "alerts:track",
    "tracked": "alerts:tracked", "untrack": "alerts:untrack", "alerts": "alerts:alerts", "users": "web:users",
    "web": "web:web",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on first use; `commands` (help, docs) imports them all."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs) -> None:
        self._lazy = dict(lazy)
        super().__init__(*args, **kwargs)

    @property
    def commands(self) -> dict[str, click.Command]:
        for name in list(self._lazy):
            self._load(name)
        return self._loaded

    @commands.setter
    def commands(self, value: dict[str, click.Command]) -> None:
        self._loaded = dict(value)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self._loaded, *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy:
            self._load(name)
        return self._loaded.get(name)

    def _load(self, name: str) -> None:
        import importlib

        module, function = self._lazy.pop(name).split(":")
        command = getattr(importlib.import_module(f"monitor.cli.{module}"), function)
        assert command.name == name, (name, command.name)
        self._loaded[name] = command


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def main() -> None:
    try:
        cli(prog_name="provenance")
    except StorageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETUP)

