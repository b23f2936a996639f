"""The PostgreSQL job queue's schema (procrastinate's tables), applied like our own migrations.

On PostgreSQL the daemons share their work through procrastinate's queue,
whose tables live beside ours.  procrastinate ships its schema as SQL: the
whole schema of the installed version (`schema.sql`) and one migration per
release since (`sql/migrations/<version>_<n>_*.sql`).  Here that schema is
applied on first use and upgraded when a newer procrastinate is installed,
under the same advisory lock as the Alembic migrations, so `provenance db
upgrade` and the first command after an upgrade bring both up to date.  The
version applied is kept as the comment of `procrastinate_jobs`.

procrastinate splits a release's migrations into "pre" (safe while old
workers run) and "post" (after every worker runs the new version); this
applies both at once, so stop the daemons before upgrading provenance.
"""

from __future__ import annotations

import re
from importlib import metadata, resources
from pathlib import Path

import sqlalchemy as sa

from storage.db import PG_MIGRATION_LOCK_ID, Database, StorageError

MARK = "provenance: procrastinate schema "
_MIGRATION = re.compile(r"^(\d+)\.(\d+)\.(\d+)_(\d+)_.*\.sql$")


def installed_version() -> str:
    return metadata.version("procrastinate")


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def applied_version(database: Database, connection: sa.Connection | None = None) -> str | None:
    """The procrastinate version whose schema the database holds, None if it holds none."""
    if database.dialect != "postgresql":
        return None
    query = sa.text("SELECT obj_description(c.oid, 'pg_class') FROM pg_class c WHERE c.relname = 'procrastinate_jobs' "
                    "AND c.relnamespace = current_schema()::regnamespace")
    if connection is None:
        with database.engine.connect() as own:
            found = own.execute(query).first()
    else:
        found = connection.execute(query).first()
    if found is None:
        return None
    comment = found[0] or ""
    return comment.removeprefix(MARK) if comment.startswith(MARK) else "unknown"


def ensure_queue_schema(database: Database) -> str | None:
    """Apply or upgrade procrastinate's schema on PostgreSQL (a no-op on SQLite); returns the version held."""
    if database.dialect != "postgresql":
        return None
    target = installed_version()
    if applied_version(database) == target:
        return target
    with database.engine.connect() as connection:
        # a session lock, then a new transaction: its catalog snapshot sees what the previous holder committed
        connection.execute(sa.select(sa.func.pg_advisory_lock(PG_MIGRATION_LOCK_ID)))
        connection.commit()
        try:
            with connection.begin():
                current = applied_version(database, connection)
                exists = connection.execute(sa.text(
                    "SELECT count(*) FROM pg_class WHERE relname = 'procrastinate_jobs' "
                    "AND relnamespace = current_schema()::regnamespace")).scalar() > 0
                if not exists:
                    connection.exec_driver_sql(_sql_text("schema.sql"))
                elif current != target:
                    if current in (None, "unknown"):
                        raise StorageError(
                            "the database holds procrastinate tables that provenance did not make (their version "
                            "is unknown); apply procrastinate's migrations by hand (`procrastinate schema "
                            "--migrations`), then mark them with COMMENT ON TABLE procrastinate_jobs IS "
                            f"'{MARK}<version>'")
                    for name in _migrations_between(current, target):
                        connection.exec_driver_sql(_sql_text(f"migrations/{name}"))
                connection.exec_driver_sql(f"COMMENT ON TABLE procrastinate_jobs IS '{MARK}{target}'")
        finally:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(PG_MIGRATION_LOCK_ID)))
            connection.commit()
    return target


def _sql_text(name: str) -> str:
    """One of procrastinate's SQL files, with `%` doubled for the driver's parameter syntax (as procrastinate does)."""
    return (resources.files("procrastinate.sql") / name).read_text(encoding="utf-8").replace("%", "%%")


def _migrations_between(current: str, target: str) -> list[str]:
    """procrastinate's migration files after version `current`, up to `target`, in order."""
    folder = Path(str(resources.files("procrastinate.sql") / "migrations"))
    low, high = _version_tuple(current), _version_tuple(target)
    chosen = []
    for path in folder.iterdir():
        if match := _MIGRATION.match(path.name):
            version = tuple(int(match[k]) for k in (1, 2, 3))
            if low < version <= high:
                chosen.append((version, int(match[4]), path.name))
    return [name for *_, name in sorted(chosen)]


def queue_status(database: Database) -> dict[str, int]:
    """Jobs by status and live workers in the queue (empty on SQLite or without the schema)."""
    if applied_version(database) is None:
        return {}
    with database.engine.connect() as connection:
        counts = dict(connection.execute(sa.text(
            "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")).all())
        counts["workers"] = connection.execute(sa.text("SELECT count(*) FROM procrastinate_workers")).scalar()
    return counts
