"""Alembic environment for both ways of migrating.

In-process (`storage.db.Database.upgrade`) the caller hands over an open
connection in `config.attributes["connection"]`, already holding the
migration lock.  From the command line (`alembic upgrade head`) the URL comes
from PROVENANCE_DB, else from `sqlalchemy.url` in alembic.ini, and the engine
is built by `storage.db` so SQLite gets the same pragmas as the service.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context

from storage.db import Database, normalise_url
from storage.models import Base

config = context.config
target_metadata = Base.metadata

if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    return normalise_url(os.environ.get("PROVENANCE_DB") or config.get_main_option("sqlalchemy.url"))


def _configure(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER constraints; batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return

    database = Database(_url())
    database.check_connection()  # a StorageError that says how to fix it, not a traceback
    try:
        with database.engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        database.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
