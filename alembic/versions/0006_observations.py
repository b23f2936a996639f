"""Observations: what each revisit of a stored post saw (up, removed, private...), when and how.

Kept apart from `posts` because a post's row is its first sighting and the
platform's claims; revisits only ever add rows here, never edit a post.
Written against 0004; re-chained after 0005 when the two were merged.

Revision ID: 0006_observations
Revises: 0005_scale_out
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006_observations"
down_revision = "0005_scale_out"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "observations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("observed_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("method", sa.String(32), nullable=False),
        sa.Column("tool", sa.String(128), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error_kind", sa.String(32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("view_count", sa.BigInteger(), nullable=True),
        sa.Column("like_count", sa.BigInteger(), nullable=True),
        sa.Column("repost_count", sa.BigInteger(), nullable=True),
        sa.Column("comment_count", sa.BigInteger(), nullable=True),
        sa.Column("media", JSON, nullable=False),
        sa.Column("changes", JSON, nullable=False),
        sa.Column("media_changed", sa.Boolean(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_observations_post_id_posts"),
        sa.CheckConstraint(
            "status IN ('up', 'removed', 'private', 'geo-blocked', 'unreachable')",
            name="ck_observations_status_known",
        ),
    )
    op.create_index("ix_observations_post_id_observed_at", "observations", ["post_id", "observed_at"])


def downgrade() -> None:
    op.drop_index("ix_observations_post_id_observed_at", table_name="observations")
    op.drop_table("observations")
