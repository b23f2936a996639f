"""Database engines, sessions and schema migrations in one place.

The service runs on a single SQLite file for one journalist on a laptop and on
PostgreSQL for a newsroom; everything above this module is the same for both.
This module hides the differences that matter (SQLite needs foreign keys,
WAL and a busy timeout switched on per connection; PostgreSQL URLs come in
several spellings) and runs Alembic in-process so that opening a database is
enough to bring its schema up to date.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import StorageError  # noqa: F401 (re-exported)

# The migrations: `alembic/` beside this package in a checkout, `storage/migrations/` in an installed wheel.
_CHECKOUT_ALEMBIC = Path(__file__).resolve().parent.parent / "alembic"
ALEMBIC_DIR = _CHECKOUT_ALEMBIC if (_CHECKOUT_ALEMBIC / "env.py").is_file() else Path(__file__).resolve().parent / "migrations"
# The newest migration; a test checks it against alembic/versions, so a new migration must update it.
HEAD_REVISION = "0010_window_hashes"
SQLITE_BUSY_TIMEOUT_SECONDS = 30
# Any constant works; it only has to be the same for every process of this service.
PG_MIGRATION_LOCK_ID = 0x70726F76  # "prov"
HOW_TO_CHOOSE = "Set --db or PROVENANCE_DB"



def default_database_url(data_dir: Path) -> str:
    """The SQLite database that lives beside the media store in `data_dir`."""
    return f"sqlite:///{Path(data_dir).resolve() / 'provenance.db'}"


def normalise_url(url: str) -> str:
    """Point every PostgreSQL spelling at the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _create_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return sa.create_engine(url, pool_pre_ping=True)

    engine = sa.create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
    )

    @sa.event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if parsed.database and parsed.database != ":memory:":
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    return engine


def _describe(url: sa.URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database or ':memory:'}"
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    return f"{url.get_backend_name()} database {url.database!r} at {where}"


class Database:
    """An engine plus the migrations and sessions that go with it."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = _create_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """"sqlite" or "postgresql"."""
        return self.engine.dialect.name

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    def key(self) -> str:
        """A short stable name for this database (its URL without the password), e.g. for derived files."""
        shown = self.engine.url.render_as_string(hide_password=True)
        return hashlib.sha256(shown.encode()).hexdigest()[:12]

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits when the block succeeds and rolls back when it raises."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def check_connection(self) -> None:
        """Raise `StorageError` with a hint when the database cannot be reached."""
        try:
            with self.engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as error:
            raise StorageError(self._connection_hint(error)) from error

    def _connection_hint(self, error: sa.exc.OperationalError) -> str:
        url = self.engine.url
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        if url.get_backend_name() == "sqlite":
            return (
                f"cannot open {_describe(url)} ({reason}): does the directory exist and is it "
                f"writable? {HOW_TO_CHOOSE}"
            )
        if url.get_backend_name() == "postgresql":
            where = f"{url.host or 'localhost'}:{url.port or 5432}"
            return (
                f"cannot connect to PostgreSQL at {where}, database {url.database!r} ({reason}): "
                f"is the server running and does the database exist? {HOW_TO_CHOOSE}"
            )
        return f"cannot connect to {_describe(url)} ({reason}). {HOW_TO_CHOOSE}"

    # --- migrations -------------------------------------------------------

    # Alembic is imported where it is used: it doubles the start-up time of every command.
    # `open_database` only loads it when the schema is not at HEAD_REVISION already.

    def _alembic_config(self, connection: sa.Connection | None = None):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(ALEMBIC_DIR))
        if connection is not None:
            config.attributes["connection"] = connection
        return config

    @contextmanager
    def _migration_connection(self) -> Iterator[sa.Connection]:
        """One connection at a time per database may run migrations."""
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            lock_path = Path(url.database).with_name(Path(url.database).name + ".migrate.lock")
            with open(lock_path, "a") as lock_file:
                fcntl.flock(lock_file, fcntl.LOCK_EX)
                try:
                    with self.engine.begin() as connection:
                        yield connection
                finally:
                    fcntl.flock(lock_file, fcntl.LOCK_UN)
            return
        with self.engine.begin() as connection:
            if url.get_backend_name() == "postgresql":
                connection.execute(sa.select(sa.func.pg_advisory_xact_lock(PG_MIGRATION_LOCK_ID)))
            yield connection

    def upgrade(self, revision: str = "head") -> None:
        """Bring the schema up to `revision`; a no-op when it is already there."""
        self._run_alembic("upgrade", revision)

    def downgrade(self, revision: str = "base") -> None:
        """Undo migrations down to `revision` ("base" drops every table)."""
        self._run_alembic("downgrade", revision)

    def _run_alembic(self, command_name: str, revision: str) -> None:
        from alembic import command
        from alembic.util.exc import CommandError

        operation = getattr(command, command_name)
        try:
            with self._migration_connection() as connection:
                operation(self._alembic_config(connection), revision)
        except sa.exc.OperationalError as error:
            raise StorageError(self._connection_hint(error)) from error
        except CommandError as error:
            raise StorageError(
                f"cannot migrate {_describe(self.engine.url)} to {revision!r} ({error}); if the "
                "database was made by a newer version of provenance, upgrade provenance"
            ) from error

    def current_revision(self) -> str | None:
        """The Alembic revision the database is at, None for an empty database."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def at_revision(self, revision: str) -> bool:
        """Whether the database is at `revision`, asked without loading Alembic (a fifth of a second)."""
        try:
            with self.engine.connect() as connection:
                found = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
        except sa.exc.DBAPIError:
            return False  # no version table yet: a new database
        return found == [revision]

    def head_revision(self) -> str:
        """The newest revision this version of the code knows."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def dispose(self) -> None:
        """Close every pooled connection (tests and short-lived commands)."""
        self.engine.dispose()


def open_database(url: str, migrate: bool = True) -> Database:
    """Open `url`, check that it answers, and bring its schema up to date.

    Upgrading is idempotent and serialised between processes, so every
    command may call this at start-up.
    """
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    database = Database(url)
    database.check_connection()
    if migrate and not database.at_revision(HEAD_REVISION):
        database.upgrade()
    return database
