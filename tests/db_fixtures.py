"""Database fixtures: every storage test runs on SQLite and on PostgreSQL.

`database_url` is a brand-new empty database per test (for migration tests and
CLI tests that migrate themselves).  `database` and `repository` are already
migrated; to keep the suite fast they reuse one migrated PostgreSQL database
per test process, emptied before each test, and copy a migrated SQLite file.

PostgreSQL is the server at PROVENANCE_TEST_PG_URL (default
postgresql+psycopg://postgres@127.0.0.1:5432/test); each database made here
is named prov_<random hex>, so parallel runs (pytest -n) never collide.
An unreachable server fails the PostgreSQL tests; set PROVENANCE_TEST_PG=skip
to skip them on purpose.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from storage.db import Database, normalise_url, open_database
from storage.models import Base
from storage.repository import SqlRepository

BACKENDS = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def pg_admin_engine() -> Iterator[sa.Engine]:
    """An autocommit connection to the test server, for CREATE/DROP DATABASE."""
    if os.environ.get("PROVENANCE_TEST_PG") == "skip":
        pytest.skip("PostgreSQL tests skipped because PROVENANCE_TEST_PG=skip")
    url = normalise_url(os.environ.get("PROVENANCE_TEST_PG_URL", DEFAULT_PG_URL))
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as error:
        shown = engine.url.render_as_string(hide_password=True)
        pytest.fail(
            f"PostgreSQL tests need a server at {shown} ({str(error.orig).strip()}). Start "
            "PostgreSQL, point PROVENANCE_TEST_PG_URL at one, or set PROVENANCE_TEST_PG=skip "
            "to skip these tests.",
            pytrace=False,
        )
    yield engine
    engine.dispose()


@contextmanager
def fresh_pg_database(admin: sa.Engine) -> Iterator[str]:
    """A new empty database on the admin engine's server; dropped afterwards."""
    name = f"prov_{uuid.uuid4().hex}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        # Throwaway data: do not wait for the disk on every commit.
        connection.execute(sa.text(f'ALTER DATABASE "{name}" SET synchronous_commit = off'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def db_backend(request) -> str:
    return request.param


@pytest.fixture
def database_url(db_backend, tmp_path, request) -> Iterator[str]:
    """The URL of a new, empty (unmigrated) database."""
    if db_backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'provenance.db'}"
        return
    with fresh_pg_database(request.getfixturevalue("pg_admin_engine")) as url:
        yield url


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "provenance.db"
    open_database(f"sqlite:///{path}").dispose()  # closing the last connection checkpoints the WAL
    return path


@pytest.fixture(scope="session")
def _pg_shared_database(pg_admin_engine) -> Iterator[Database]:
    with fresh_pg_database(pg_admin_engine) as url:
        database = open_database(url)
        yield database
        database.dispose()


def _empty_all_tables(database: Database) -> None:
    # DELETE, not TRUNCATE: on tiny tables it is many times faster.  Ids keep counting up.
    with database.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def database(db_backend, tmp_path, request) -> Iterator[Database]:
    """An opened, migrated, empty `Database`."""
    if db_backend == "sqlite":
        path = tmp_path / "provenance.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        database = Database(f"sqlite:///{path}")  # the template is migrated already
        yield database
        database.dispose()
        return
    database = request.getfixturevalue("_pg_shared_database")
    _empty_all_tables(database)
    yield database


@pytest.fixture
def repository(database) -> SqlRepository:
    return SqlRepository(database)
