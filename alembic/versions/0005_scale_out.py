"""Monitoring that never stalls: who runs a poll, when watches are due, which poll counted an item.

Several processes (threads of one daemon, or daemons on several machines
sharing PostgreSQL) now poll and ingest at once, so the rows say who does what:

* `polls.holder` (`<host>:<pid>:<token>`) and `polls.heartbeat_at`: the process
  running a poll refreshes its heartbeat; a poll left "running" by a process
  that died is closed as "interrupted" on the next start.
* `polls.items_pending`: items handed to ingest jobs and not yet done; the job
  that finishes the last one closes the poll (NULL while the poll still lists).
* `watches.next_poll_at`: a watch is claimed for polling by one atomic UPDATE,
  so however many schedulers tick, each watch is polled once per interval.
* `watch_items.poll_id`: the poll that last counted this item, so a retried
  ingest job never counts an item twice in its poll.

Revision ID: 0005_scale_out
Revises: 0004_motion_hashes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_scale_out"
down_revision = "0004_motion_hashes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("polls") as batch:
        batch.add_column(sa.Column("holder", sa.Text(), nullable=True))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("items_pending", sa.Integer(), nullable=True))
    op.create_index("ix_polls_status", "polls", ["status"])
    with op.batch_alter_table("watches") as batch:
        batch.add_column(sa.Column("next_poll_at", sa.DateTime(), nullable=True))
    with op.batch_alter_table("watch_items") as batch:
        batch.add_column(sa.Column("poll_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watch_items") as batch:
        batch.drop_column("poll_id")
    with op.batch_alter_table("watches") as batch:
        batch.drop_column("next_poll_at")
    op.drop_index("ix_polls_status", table_name="polls")
    with op.batch_alter_table("polls") as batch:
        batch.drop_column("items_pending")
        batch.drop_column("heartbeat_at")
        batch.drop_column("holder")
