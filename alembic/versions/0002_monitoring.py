"""Monitoring: watches, their polls and per-item state, and the daemon lock.

Also links `posts.watch_id` to the new watches table.  On SQLite that needs
batch mode (the posts table is copied with the constraint added), which is why
the foreign key was not created in 0001.

Revision ID: 0002_monitoring
Revises: 0001_core
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002_monitoring"
down_revision = "0001_core"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
POSTS_WATCH_FK = "fk_posts_watch_id_watches"


def upgrade() -> None:
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("interval_seconds", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("last_polled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watches"),
    )
    # Before watch_items exists: on SQLite, batch mode drops and recreates posts.
    with op.batch_alter_table("posts") as batch:
        batch.create_foreign_key(
            POSTS_WATCH_FK, "watches", ["watch_id"], ["id"], ondelete="SET NULL"
        )
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.Column("items_seen", sa.Integer(), nullable=False),
        sa.Column("items_new", sa.Integer(), nullable=False),
        sa.Column("items_failed", sa.Integer(), nullable=False),
        sa.Column("errors", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_polls"),
        sa.ForeignKeyConstraint(
            ["watch_id"], ["watches.id"], name="fk_polls_watch_id_watches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_polls_watch_id", "polls", ["watch_id"])
    op.create_table(
        "watch_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("archive_key", sa.String(512), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watch_items"),
        sa.ForeignKeyConstraint(
            ["watch_id"], ["watches.id"], name="fk_watch_items_watch_id_watches", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["post_id"], ["posts.id"], name="fk_watch_items_post_id_posts", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("watch_id", "archive_key", name="uq_watch_items_watch_id_archive_key"),
    )
    op.create_table(
        "daemon_locks",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_daemon_locks"),
    )


def downgrade() -> None:
    op.drop_table("daemon_locks")
    op.drop_table("watch_items")
    with op.batch_alter_table("posts") as batch:
        batch.drop_constraint(POSTS_WATCH_FK, type_="foreignkey")
    op.drop_index("ix_polls_watch_id", table_name="polls")
    op.drop_table("polls")
    op.drop_table("watches")
