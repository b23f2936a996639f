"""Migrations: round trip on both backends, in step with the models, safe to run twice."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from storage import Database, StorageError, default_database_url, open_database
from storage.db import normalise_url
from storage.models import POSTGRESQL_TRIGRAM_INDEXES, Base

ALL_TABLES = {table.name for table in Base.metadata.sorted_tables}
WORKSPACE_TABLES = {"claims", "post_merges", "deletions", "tracked", "alerts", "alert_deliveries", "users", "audit"}
WORKSPACE_POST_INDEXES = {"ix_posts_platform", "ix_posts_uploader", "ix_posts_first_seen_at", "ix_posts_watch_id"}


def table_names(database: Database) -> set[str]:
    return set(sa.inspect(database.engine).get_table_names())


def columns(database: Database, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(database.engine).get_columns(table)}


def post_indexes(database: Database) -> set[str]:
    return {i["name"] for i in sa.inspect(database.engine).get_indexes("posts")}


def frame_columns(database: Database) -> set[str]:
    return {c["name"] for c in sa.inspect(database.engine).get_columns("frames")}


def test_upgrade_then_downgrade_round_trip(database_url):
    database = Database(database_url)
    try:
        assert database.current_revision() is None
        database.upgrade()
        assert database.current_revision() == "0010_window_hashes" == database.head_revision()
        assert table_names(database) == ALL_TABLES | {"alembic_version"}
        assert "url_key" in columns(database, "watches")
        assert {"window_hash", "surround_hash"} <= frame_columns(database)

        database.downgrade("0009_watch_keys")
        assert not {"window_hash", "surround_hash"} & frame_columns(database)
        assert "url_key" in columns(database, "watches")

        database.downgrade("0008_media_signals")
        assert "url_key" not in columns(database, "watches")
        assert {"centre_hash", "overlay_masked", "motion_hash"} <= frame_columns(database)
        assert {"holder", "heartbeat_at", "items_pending"} <= columns(database, "polls")
        assert WORKSPACE_POST_INDEXES <= post_indexes(database)

        database.downgrade("0007_workspace")
        assert table_names(database) == ALL_TABLES - {"media_signals"} | {"alembic_version"}

        database.downgrade("0006_observations")
        assert table_names(database) == ALL_TABLES - WORKSPACE_TABLES - {"media_signals"} | {"alembic_version"}
        assert not (WORKSPACE_POST_INDEXES | set(POSTGRESQL_TRIGRAM_INDEXES)) & post_indexes(database)

        database.downgrade("0005_scale_out")
        assert "observations" not in table_names(database)

        database.downgrade("0004_motion_hashes")
        assert not {"holder", "heartbeat_at", "items_pending"} & columns(database, "polls")
        assert "next_poll_at" not in columns(database, "watches") and "poll_id" not in columns(database, "watch_items")
        assert database.current_revision() == "0004_motion_hashes"
        assert table_names(database) == (ALL_TABLES - WORKSPACE_TABLES - {"observations", "media_signals"}
                                         | {"alembic_version"})

        database.downgrade("0003_centre_hashes")
        assert database.current_revision() == "0003_centre_hashes"
        assert "motion_hash" not in frame_columns(database)
        assert {"centre_hash", "overlay_masked"} <= frame_columns(database)

        database.downgrade("0002_monitoring")
        assert database.current_revision() == "0002_monitoring"
        assert not {"centre_hash", "overlay_masked"} & frame_columns(database)

        database.downgrade("0001_core")
        assert database.current_revision() == "0001_core"
        assert "watches" not in table_names(database)
        assert not sa.inspect(database.engine).get_foreign_keys("posts")[1:]  # only media_id

        database.downgrade("base")
        assert database.current_revision() is None
        assert table_names(database) == {"alembic_version"}

        database.upgrade()
        assert table_names(database) == ALL_TABLES | {"alembic_version"}
    finally:
        database.dispose()


def _not_trigram(obj, name, type_, reflected, compare_to) -> bool:
    return not (type_ == "index" and name in POSTGRESQL_TRIGRAM_INDEXES)


def test_migrations_match_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False,
                                                               "include_object": _not_trigram})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_post_substring_searches_have_trigram_indexes_on_postgresql(database):
    """The PostgreSQL-only indexes (left out of the comparison above) exist where pg_trgm does."""
    if database.dialect != "postgresql":
        assert not set(POSTGRESQL_TRIGRAM_INDEXES) & post_indexes(database)
        return
    assert set(POSTGRESQL_TRIGRAM_INDEXES) <= post_indexes(database)


def test_posts_constraints_survive_batch_migration(database):
    """SQLite recreates posts in 0002; its CHECK and UNIQUE constraints must come along."""
    now = datetime(2024, 5, 1, tzinfo=timezone.utc).replace(tzinfo=None)
    with database.engine.begin() as connection:
        media_id = connection.execute(
            sa.text(
                "INSERT INTO media (sha256, size_bytes, store_path, exiftool, ffprobe, created_at)"
                " VALUES (:sha, 1, 'm', '{}', '{}', :now) RETURNING id"
            ),
            {"sha": "a" * 64, "now": now},
        ).scalar_one()
    insert_post = sa.text(
        "INSERT INTO posts (media_id, url, published_at, published_precision, published_source,"
        " first_seen_at, raw_metadata, archive_key, watch_id)"
        " VALUES (:media, 'u', :at, :precision, :source, :now, '{}', :key, :watch)"
    )
    bad_rows = [
        {"at": now, "precision": None, "source": "x", "key": None, "watch": None},
        {"at": now, "precision": "hour", "source": "x", "key": None, "watch": None},
        {"at": None, "precision": None, "source": None, "key": None, "watch": 999},
    ]
    for row in bad_rows:
        with pytest.raises(sa.exc.IntegrityError):
            with database.engine.begin() as connection:
                connection.execute(insert_post, {"media": media_id, "now": now, **row})
    ok = {"at": None, "precision": None, "source": None, "key": "youtube abc", "watch": None}
    with database.engine.begin() as connection:
        connection.execute(insert_post, {"media": media_id, "now": now, **ok})
    with pytest.raises(sa.exc.IntegrityError):
        with database.engine.begin() as connection:
            connection.execute(insert_post, {"media": media_id, "now": now, **ok})


def test_open_database_is_idempotent(database_url):
    first = open_database(database_url)
    second = open_database(database_url)
    assert first.current_revision() == second.current_revision() == "0010_window_hashes"
    first.dispose()
    second.dispose()


def test_concurrent_first_open_of_one_sqlite_file(tmp_path):
    url = default_database_url(tmp_path / "data")
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_database(url).dispose()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Database(url).current_revision() == "0010_window_hashes"


def test_default_database_url_lives_in_the_data_dir(tmp_path):
    assert default_database_url(tmp_path) == f"sqlite:///{tmp_path.resolve()}/provenance.db"


@pytest.mark.parametrize(
    "given",
    ["postgres://u@h:1/db", "postgresql://u@h:1/db", "postgresql+psycopg://u@h:1/db"],
)
def test_postgres_urls_use_psycopg(given):
    assert normalise_url(given) == "postgresql+psycopg://u@h:1/db"
    assert Database(given).engine.dialect.driver == "psycopg"


def test_unreachable_postgres_says_how_to_fix_it():
    with pytest.raises(StorageError) as caught:
        open_database("postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2")
    message = str(caught.value)
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in message
    assert "is the server running" in message
    assert "PROVENANCE_DB" in message


def test_unopenable_sqlite_says_how_to_fix_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError, match="PROVENANCE_DB"):
        Database(f"sqlite:///{blocker}/provenance.db").check_connection()


def test_alembic_command_line_uses_provenance_db(tmp_path):
    """`alembic upgrade head` from the repository root reads PROVENANCE_DB.

    A subprocess, because Alembic's command line reconfigures logging.
    """
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    finished = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PROVENANCE_DB": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 0, finished.stderr
    database = Database(url)
    assert database.current_revision() == database.head_revision()
    database.dispose()


def test_frames_stored_before_0003_survive_it(database_url):
    """Upgrading to centre and motion hashes keeps every stored frame (SQLite copies the table in batch mode)."""
    database = Database(database_url)
    now = datetime(2024, 5, 1, tzinfo=timezone.utc).replace(tzinfo=None)
    try:
        database.upgrade("0002_monitoring")
        with database.engine.begin() as connection:
            media_id = connection.execute(sa.text(
                "INSERT INTO media (sha256, size_bytes, store_path, exiftool, ffprobe, created_at)"
                " VALUES (:sha, 1, 'm', '{}', '{}', :now) RETURNING id"), {"sha": "b" * 64, "now": now}).scalar_one()
            settings_id = connection.execute(sa.text(
                "INSERT INTO fingerprint_settings (key, algorithm, params, created_at)"
                " VALUES ('phash64-v2-x', 'phash64', '{}', :now) RETURNING id"), {"now": now}).scalar_one()
            connection.execute(sa.text(
                "INSERT INTO frames (media_id, settings_id, idx, timestamp, hash, is_scene_cut, quality)"
                " VALUES (:m, :s, :i, :t, :h, false, 20.0)"),
                [{"m": media_id, "s": settings_id, "i": i, "t": i * 0.25, "h": -(i + 1)} for i in range(3)])
        database.upgrade()
        with database.engine.connect() as connection:
            rows = connection.execute(sa.text(
                "SELECT idx, hash, centre_hash, overlay_masked, motion_hash FROM frames ORDER BY idx")).all()
        assert [tuple(r) for r in rows] == [(0, -1, None, False, None), (1, -2, None, False, None),
                                            (2, -3, None, False, None)]
    finally:
        database.dispose()


def test_head_revision_constant_is_alembic_head(database_url):
    """`open_database` skips Alembic when the schema is at HEAD_REVISION: it must be the real head."""
    from storage.db import HEAD_REVISION, open_database

    database = open_database(database_url)
    try:
        assert HEAD_REVISION == database.head_revision() == database.current_revision()
        assert database.at_revision(HEAD_REVISION) and not database.at_revision("0001_core")
    finally:
        database.dispose()
