"""Storage: the database, its migrations, the media store and the repository.

Everything outside this package uses the names re-exported here and the
dataclasses in `storage.records`; SQLAlchemy models stay inside.  The names
load on first use, so `storage.records` and `storage.mediastore` can be
imported without SQLAlchemy (a cold command analyses its video meanwhile).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "AlreadyExists": "storage.repository",
    "Database": "storage.db",
    "MediaStore": "storage.mediastore",
    "NotFound": "storage.repository",
    "SqlRepository": "storage.repository",
    "StorageError": "storage.errors",
    "default_database_url": "storage.db",
    "open_database": "storage.db",
    "sha256_file": "storage.mediastore",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value
