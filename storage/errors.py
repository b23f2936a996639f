"""The storage error users see; its own module so code that only hashes or files media need not load SQLAlchemy."""

from __future__ import annotations


class StorageError(Exception):
    """A storage problem the user can fix; the message says how."""
