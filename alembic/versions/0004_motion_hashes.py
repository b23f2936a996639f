"""Frames of still-camera shots get a hash of what moves in front of the camera.

Fingerprint settings v4 hash, for shots where the camera stands still, the
difference between each frame and the shot's still background: the moving
parts tell one moment (or one take) of a static scene from another, where the
whole-picture hash cannot.  Other frames, and frames stored with older
settings, keep NULL; older frames are never compared with v4 ones (settings
keys differ), and `provenance refingerprint` makes v4 ones.

Revision ID: 0004_motion_hashes
Revises: 0003_centre_hashes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_motion_hashes"
down_revision = "0003_centre_hashes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("motion_hash", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("motion_hash")
