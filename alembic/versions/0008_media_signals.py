"""Per-video signals: one stored value per media, fingerprint setting and signal kind.

A `fingerprints.signals.MediaSignal` (local features of the keyframes; later
audio) is one payload per video, too big and too differently shaped for the
`frames` rows: it is kept as bytes here, with the kind's name and version, so
a new kind needs no new table and values of an old version are never compared
with new ones (they are recomputed: `provenance db backfill-signals`).

Revision ID: 0008_media_signals
Revises: 0007_workspace
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_media_signals"
down_revision = "0007_workspace"
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "media_signals",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("media_id", sa.Integer(), nullable=False),
        sa.Column("settings_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_media_signals"),
        sa.ForeignKeyConstraint(["media_id"], ["media.id"], name="fk_media_signals_media_id_media",
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["settings_id"], ["fingerprint_settings.id"],
                                name="fk_media_signals_settings_id_fingerprint_settings"),
        sa.UniqueConstraint("media_id", "settings_id", "kind", "version",
                            name="uq_media_signals_media_id_settings_id_kind_version"),
    )
    # index catch-up reads one kind's rows after a high-water mark
    op.create_index("ix_media_signals_settings_id_kind_version_id", "media_signals",
                    ["settings_id", "kind", "version", "id"])


def downgrade() -> None:
    op.drop_index("ix_media_signals_settings_id_kind_version_id", table_name="media_signals")
    op.drop_table("media_signals")
