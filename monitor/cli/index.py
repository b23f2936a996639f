"""`provenance index`: the on-disk frame indexes and per-video signal logs, derived from the database and
rebuildable from it."""

from __future__ import annotations

import json

import click
from rich.table import Table

from monitor.cli.app import App, pass_app, shown_markup, stderr, stdout


@click.group()
def index() -> None:
    """The indexes: segment files in DATA_DIR/index, one per stored frame view, and a log of values per
    per-video signal kind (keypoints...), from which that kind's index is loaded.

    The database is the source of truth; the indexes are derived from it, kept
    current by every command (they read only the frame rows stored since), and
    rebuilt by themselves when they do not match it.

    \b
    Example:
      provenance index status
      provenance index rebuild
    """


def _views(ws, only: str | None):
    """The stored frame views and per-video signal kinds, or the one named `only`."""
    from fingerprints.signals import media_signals, stored_views

    views = [*stored_views(), *media_signals()]
    if only:
        views = [v for v in views if v.name == only]
        if not views:
            known = ", ".join(v.name for v in [*stored_views(), *media_signals()])
            raise click.BadParameter(f"no stored view or signal kind {only!r}; known: {known}", param_hint="--view")
    return views


def _is_signal(view) -> bool:
    from fingerprints.signals import MediaSignal

    return isinstance(view, MediaSignal)


def _signal_row(ws, kind, idx) -> dict:
    return {"view": kind.name, "rows": len(idx), "segments": 0, "disk_bytes": idx.log.disk_bytes(),
            "high_water_mark": idx.high_water_mark,
            "database_last_row": ws.repository.last_media_signal_row_id(ws.settings_id, kind.name, kind.version),
            "directory": str(idx.log.directory)}


@index.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@pass_app
def index_status(app: App, as_json: bool) -> None:
    """Show each index: rows (videos, for a signal kind), segments, size on disk, how far it covers the database.

    \b
    Example:
      provenance index status --json
    """
    ws = app.workspace()
    indexes = ws.indexes()  # caught up first
    signal_indexes = ws.signal_indexes()
    last = ws.repository.last_frame_row_id(ws.settings_id)
    rows = []
    for view in _views(ws, None):
        if _is_signal(view):
            rows.append(_signal_row(ws, view, signal_indexes[view.name]))
            continue
        idx = indexes[view.name]
        rows.append({"view": view.name, "rows": len(idx), "segments": len(idx.segment_sizes()),
                     "disk_bytes": idx.disk_bytes(), "high_water_mark": max(idx.high_water_mark, 0),
                     "database_last_row": last, "directory": str(idx.directory)})
    if as_json:
        stdout.print_json(json.dumps(rows))
        return
    table = Table("view", "rows", "segments", "on disk", "covers rows up to", "directory")
    for r in rows:
        table.add_row(r["view"], f"{r['rows']:,}", str(r["segments"]), f"{r['disk_bytes'] / 1e6:.1f} MB",
                      f"{r['high_water_mark']:,} of {r['database_last_row']:,}", shown_markup(r["directory"]))
    stdout.print(table)


@index.command("check")
@click.option("--deep", is_flag=True, help="Also checksum every segment file (reads them all).")
@pass_app
def index_check(app: App, deep: bool) -> None:
    """Check the indexes against the database (row counts, high-water marks, files); exit 1 on a problem.

    \b
    Example:
      provenance index check --deep
    """
    ws = app.workspace()
    indexes = ws.indexes()
    signal_indexes = ws.signal_indexes()
    problems = []
    for view in _views(ws, None):
        if _is_signal(view):
            expected = ws.repository.count_media_signals(ws.settings_id, view.name, view.version)
            held = len(signal_indexes[view.name])
            found = [] if held == expected else [f"holds {held:,} videos' values, the database {expected:,}"]
            problems += [f"{view.name}: {p}" for p in found]
            if not found:
                stdout.print(f"{view.name}: ok ({expected:,} videos)")
            continue
        expected = ws.repository.count_frame_column(ws.settings_id, view.column)
        found = indexes[view.name].check(expected_rows=expected, deep=deep)
        problems += [f"{view.name}: {p}" for p in found]
        if not found:
            stdout.print(f"{view.name}: ok ({expected:,} rows)")
    for problem in problems:
        stderr.print(f"problem: {shown_markup(problem)}")
    if problems:
        stderr.print("run `provenance index rebuild` to make the indexes afresh from the database")
        raise SystemExit(1)


@index.command("rebuild")
@click.option("--view", metavar="NAME", help="Only this view's or signal kind's index (default: all).")
@pass_app
def index_rebuild(app: App, view: str | None) -> None:
    """Make the indexes afresh from the database (streams the rows: memory stays bounded).

    This rebuilds what is derived from stored rows; values a signal kind lacks
    (media fingerprinted before the kind existed) are computed by
    `provenance db backfill-signals`.

    \b
    Example:
      provenance index rebuild
      provenance index rebuild --view keypoints
    """
    ws = app.workspace()
    for v in _views(ws, view):
        if _is_signal(v):
            signal_index = ws.rebuild_signal_index(v)
            stdout.print(f"{v.name}: values of {len(signal_index):,} videos")
            continue
        rebuilt = ws.rebuild_index(v)
        stdout.print(f"{v.name}: {len(rebuilt):,} rows in {len(rebuilt.segment_sizes())} segments")
        rebuilt.close()


@index.command("merge")
@click.option("--full", is_flag=True, help="Merge as far as the segment size cap allows.")
@pass_app
def index_merge(app: App, full: bool) -> None:
    """Merge small segment files into bigger ones (the daemon also does this on its own).

    \b
    Example:
      provenance index merge
    """
    ws = app.workspace()
    for name, idx in ws.indexes().items():
        merged = idx.merge(full=full)
        stdout.print(f"{name}: {merged} segments merged away; {len(idx.segment_sizes())} left")
