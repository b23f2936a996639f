"""One watch per address, even when two processes add it at the same instant.

`provenance watch add` (and the web form) refuses a URL whose address is
watched already (`monitor.sources.watch_urls.same_watch_key`: case, www.,
trailing slash, tracking parameters...), but two processes adding the same
address at the same instant could both pass that check.  Each new watch now
stores its address key (as a SHA-256: 64 characters, however long the URL)
under a unique index, so the second insert fails and is reported as
"watched already".  Watches stored before this revision keep
a NULL key (the check still compares them by URL): the key is computed by
the application, which a migration does not import.

Revision ID: 0009_watch_keys
Revises: 0008_media_signals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_watch_keys"
down_revision = "0008_media_signals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("watches") as batch:
        batch.add_column(sa.Column("url_key", sa.String(64), nullable=True))
        batch.create_unique_constraint("uq_watches_url_key", ["url_key"])


def downgrade() -> None:
    with op.batch_alter_table("watches") as batch:
        batch.drop_constraint("uq_watches_url_key", type_="unique")
        batch.drop_column("url_key")
