"""The storage error users see; its own module so code that only hashes or files media need not load SQLAlchemy."""

from __future__ import annotations


class StorageError(Exception):
    """A storage problem the user can fix; the message says how."""


class NotFound(KeyError):
    """No row with the given id or key."""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else "not found"
