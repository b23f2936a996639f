"""What every command shares: the lazily opened settings and workspace, errors, output, progress.

Commands live in sibling modules (`core`, `db`, `watch`, `calibrate`) and
import from here; `monitor.cli` assembles them into the `provenance` group, so
no module of the package imports the package back.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from monitor.config import Config, ConfigError, load_config
from monitor.display import shown, shown_markup  # noqa: F401 (shown_markup: for the commands)
from storage import StorageError
from storage.records import PRECISION_DAY, PRECISION_SECOND, implausible_time

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
        for line in self.message.splitlines() or [""]:  # one line per problem
            click.echo(f"error: {line}", err=True)


class App:
    """Lazily opened settings and workspace for one invocation."""

    def __init__(self, db: str | None, data_dir: str | None, config_file: str | None) -> None:
        self.options = (config_file, data_dir, db)
        self._config: Config | None = None
        self._workspace = None
        self._repository = None

    @property
    def config(self) -> Config:
        if self._config is None:
            config_file, data_dir, db = self.options
            try:
                self._config = load_config(config_file, data_dir, db)
            except ConfigError as exc:
                raise SetupProblem(str(exc)) from exc
        return self._config

    def repository(self):
        """The repository alone, for commands that need nothing else: no fingerprint settings, indexes or numpy.

        The workspace's own when one is open.
        """
        if self._workspace is not None:
            return self._workspace.repository
        if self._repository is None:
            from storage import SqlRepository, open_database
            from storage.db import default_database_url

            self.config.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                database = open_database(self.config.db_url or default_database_url(self.config.data_dir))
            except StorageError as exc:
                raise SetupProblem(str(exc)) from exc
            self._repository = SqlRepository(database)
        return self._repository

    def workspace(self):
        from monitor.workspace import Workspace

        if self._workspace is None:
            try:
                self._workspace = Workspace.open(self.config)
            except StorageError as exc:
                raise SetupProblem(str(exc)) from exc
        return self._workspace

    def close(self) -> None:
        if self._repository is not None:
            self._repository.database.dispose()
        if self._workspace is not None:
            alerts = sys.modules.get("monitor.jobs.alerts")
            if alerts is not None:  # alerts an ingest raised are still being sent: wait a bounded time
                alerts.wait_for_deliveries(2 * float(self.config.section("alerts")["timeout"]) + 5)
            self._workspace.close()


pass_app = click.make_pass_decorator(App)

OUTPUTS = ("table", "json", "csv")


def output_options(command: Callable) -> Callable:
    """`--json` and `--csv` for a listing command (a table for people by default): passes `output`."""
    command = click.option("--csv", "output", flag_value="csv", help="Print CSV (one row per item) instead.")(command)
    command = click.option("--json", "output", flag_value="json", help="Print a JSON list instead of a table.")(
        command)
    return click.option("--table", "output", flag_value="table", default=True, hidden=True)(command)


def print_json(value: Any) -> None:
    stdout.print_json(json.dumps(value, ensure_ascii=False, default=str))


def print_csv(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Rows as CSV on stdout, exactly as stored (lists and dicts as JSON)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, list | dict) else v
                         for k, v in row.items()})
    click.echo(buffer.getvalue(), nl=False)


def parse_when(value: str | None, option: str, end: bool = False) -> datetime | None:
    """A date or date-time bound in UTC; as an end, a bare date means the end of that day."""
    if not value:
        return None
    try:
        at, precision = parse_published_at(value)
    except click.BadParameter as exc:
        raise click.BadParameter(str(exc.message).split(" (e.g.")[0] + " (e.g. 2024-03-01 or 2024-03-01T10:15:00Z)",
                                 param_hint=option) from exc
    return at + timedelta(days=1) if end and precision == PRECISION_DAY else at


def parse_published_at(value: str | None) -> tuple[datetime | None, str | None]:
    """ISO 8601 date or date-time to (UTC time, precision); a bare date is a day claim."""
    if not value:
        return None, None
    text = value.strip()
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            day = datetime(d.year, d.month, d.day, tzinfo=UTC)
            _refuse_implausible(value, day)
            return day, PRECISION_DAY
        at = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or date-time "
                                 "(e.g. 2024-03-01 or 2024-03-01T10:15:00Z)", param_hint="--published-at")
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    _refuse_implausible(value, at)
    return at, PRECISION_SECOND


def _refuse_implausible(value: str, at: datetime) -> None:
    if reason := implausible_time(at):
        raise click.BadParameter(f"{value!r} cannot be a publication time ({reason}); give the date the "
                                 "platform shows, between 1990 and tomorrow", param_hint="--published-at")


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


def run_media_job(label: str, job: Callable[..., dict], as_json: bool, line: Callable[[dict], str]) -> None:
    """Run a job over stored media (refingerprint, backfill) with a progress bar, then print its summary:
    one JSON object, or `line(summary)` and a line per failed media."""
    with progress_reporter(label, None, unit="media") as progress:
        summary = job((lambda n, total: progress(n, total)) if progress else None)
    if as_json:
        stdout.print_json(json.dumps(summary))
        return
    stdout.print(line(summary))
    for failure in summary["failed"]:
        stdout.print(f"failed: media {failure['media_id']} ({failure['sha256'][:12]}…): "
                     f"{shown_markup(failure['error'])}")


@contextmanager
def fingerprint_progress(path: Path):
    """Progress over the video's duration while it is analysed; input errors become exit 2."""
    from monitor.analysis import InputError

    try:
        with progress_reporter(f"fingerprinting {shown(path.name)[:40]}", None) as progress:
            yield progress
    except InputError as exc:
        raise InputProblem(f"{shown(path)}: {exc}") from exc


def _analyse(ws, path: Path, describe: bool):
    from monitor.analysis import analyse_file

    with fingerprint_progress(path) as progress:
        return analyse_file(path, ws.settings, progress, ws.exif, describe=describe, limits=ws.config.limits)


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def warn_if_unfingerprinted(ws) -> None:
    """Say so when stored media cannot be matched because they lack current fingerprints."""
    missing = ws.repository.count_media_without_fingerprint(ws.settings_id)
    if missing:
        stderr.print(f"warning: {missing} stored media have no fingerprint with the current settings "
                     "and cannot be matched; run `provenance refingerprint`")
    from fingerprints.signals import media_signals

    for kind in media_signals():
        lacking = ws.repository.media_without_signal(ws.settings_id, kind.name, kind.version)
        if lacking:
            stderr.print(f"warning: {len(lacking)} stored media have no {kind.name} signal (v{kind.version}), so "
                         f"that route cannot find them; run `provenance db backfill-signals`")
