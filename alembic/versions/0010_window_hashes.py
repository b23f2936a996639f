"""Frames of composite posts keep the hash of their window and of what is around it.

A post that shows footage inside other pictures (a picture-in-picture
window, a screen recording's player, one side of a split screen: a duet or
a reaction) was hashed as a whole only, so a clean copy of its footage
could not find it; windows were looked for in queries only.  Now the window
(the larger side of a split) and the picture around it (the other side) are
stored too, each indexed like the other views.  Frames without a window,
and frames stored before this revision, keep NULL: posts stored before are
matched as before (whole picture and centre), posts stored from now on by
their windows too.  The fingerprint settings are unchanged (the whole-picture
and centre hashes are the same), so nothing needs fingerprinting again.

Revision ID: 0010_window_hashes
Revises: 0009_watch_keys
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_window_hashes"
down_revision = "0009_watch_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.add_column(sa.Column("window_hash", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("surround_hash", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("frames") as batch:
        batch.drop_column("surround_hash")
        batch.drop_column("window_hash")
