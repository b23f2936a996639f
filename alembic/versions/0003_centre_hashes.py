"""Frames get a second hash, of the picture's centre, and whether an overlay was masked.

Fingerprint settings v3 hash the central 70% of the active area next to the
whole of it (crops, account templates) and mask still overlays first.  Frames
stored with older settings keep NULL here; they are never compared with v3
frames (settings keys differ), and `provenance refingerprint` makes v3 ones.

Revision ID: 0003_centre_hashes
Revises: 0002_monitoring
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_centre_hashes"
down_revision = "0002_monitoring"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("centre_hash", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("overlay_masked", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("overlay_masked")
        batch.drop_column("centre_hash")
