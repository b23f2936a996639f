"""The investigator's workspace: user claims, merges, deletions, tracked footage, alerts, accounts, audit.

Every table here is a trail: corrections sit beside what a platform said
(`claims`, `post_merges`), what is deleted leaves a `deletions` row, and
`audit` says who changed what.  Posts get the indexes that `provenance posts`
searches with; on PostgreSQL, substring searches of URLs, titles and
descriptions use trigram indexes when the server has pg_trgm (a trusted
extension: the database owner may create it).
Written against 0006; the lead re-chains it after 0005 when merging.

Revision ID: 0007_workspace
Revises: 0006_observations
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_workspace"
down_revision = "0006_observations"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
POST_INDEXES = {"ix_posts_platform": "platform", "ix_posts_uploader": "uploader",
                "ix_posts_first_seen_at": "first_seen_at", "ix_posts_watch_id": "watch_id"}
TRIGRAM_INDEXES = {"ix_posts_url_trgm": "url", "ix_posts_title_trgm": "title",
                   "ix_posts_description_trgm": "description"}


def _pg_trgm_available(bind) -> bool:
    """Whether pg_trgm is (or can be) installed; a refusal must not abort the migration's transaction."""
    if bind.scalar(sa.text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")):
        return True
    if not bind.scalar(sa.text("SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'")):
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        return True
    except sa.exc.DBAPIError:
        return False


def upgrade() -> None:
    for name, column in POST_INDEXES.items():
        op.create_index(name, "posts", [column])
    bind = op.get_bind()
    if bind.dialect.name == "postgresql" and _pg_trgm_available(bind):
        for name, column in TRIGRAM_INDEXES.items():
            op.execute(f"CREATE INDEX {name} ON posts USING gin ({column} gin_trgm_ops)")

    op.create_table(
        "claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=False),
        sa.Column("precision", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("correction", sa.Boolean(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_claims"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_claims_post_id_posts"),
        sa.CheckConstraint("precision IN ('second', 'day')", name="ck_claims_precision_known"),
    )
    op.create_index("ix_claims_post_id", "claims", ["post_id"])

    op.create_table(
        "post_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("into_post_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_post_merges"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_post_merges_post_id_posts"),
        sa.ForeignKeyConstraint(["into_post_id"], ["posts.id"], name="fk_post_merges_into_post_id_posts"),
        sa.UniqueConstraint("post_id", name="uq_post_merges_post_id"),
    )
    op.create_index("ix_post_merges_into_post_id", "post_merges", ["into_post_id"])

    op.create_table(
        "deletions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=True),
        sa.Column("post_id", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_deletions"),
        sa.CheckConstraint("kind IN ('media', 'post')", name="ck_deletions_kind_known"),
    )
    op.create_index("ix_deletions_sha256", "deletions", ["sha256"])

    op.create_table(
        "tracked",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=True),
        sa.Column("removed_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tracked"),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name="fk_tracked_media_id_media"),
    )
    op.create_index("ix_tracked_media_id", "tracked", ["media_id"])

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("tracked_id", sa.Integer(), nullable=True),
        sa.Column("matched_media_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("acked_at", sa.DateTime(), nullable=True),
        sa.Column("acked_by", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.ForeignKeyConstraint(["post_id"], ["posts.id"], name="fk_alerts_post_id_posts"),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name="fk_alerts_media_id_media"),
        sa.ForeignKeyConstraint(["tracked_id"], ["tracked.id"], name="fk_alerts_tracked_id_tracked",
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["matched_media_id"], ["media.id"], name="fk_alerts_matched_media_id_media",
                                ondelete="SET NULL"),
        sa.CheckConstraint("kind IN ('tracked', 'match')", name="ck_alerts_kind_known"),
    )
    op.create_index("ix_alerts_post_id", "alerts", ["post_id"])
    op.create_index("ix_alerts_acked_at", "alerts", ["acked_at"])

    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempted_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name="fk_alert_deliveries_alert_id_alerts",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_alert_deliveries_alert_id", "alert_deliveries", ["alert_id"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
        sa.CheckConstraint("role IN ('admin', 'editor', 'viewer')", name="ck_users_role_known"),
    )

    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("via", sa.String(16), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_at", "audit", ["at"])


def downgrade() -> None:
    op.drop_index("ix_audit_at", table_name="audit")
    op.drop_table("audit")
    op.drop_table("users")
    op.drop_index("ix_alert_deliveries_alert_id", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alerts_acked_at", table_name="alerts")
    op.drop_index("ix_alerts_post_id", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_tracked_media_id", table_name="tracked")
    op.drop_table("tracked")
    op.drop_index("ix_deletions_sha256", table_name="deletions")
    op.drop_table("deletions")
    op.drop_index("ix_post_merges_into_post_id", table_name="post_merges")
    op.drop_table("post_merges")
    op.drop_index("ix_claims_post_id", table_name="claims")
    op.drop_table("claims")
    for name in TRIGRAM_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    for name in POST_INDEXES:
        op.drop_index(name, table_name="posts")
