"""Storage: the database, its migrations, the media store and the repository.

Everything outside this package uses the names re-exported here and the
dataclasses in `storage.records`; SQLAlchemy models stay inside.
"""

from storage.db import Database, StorageError, default_database_url, open_database
from storage.mediastore import MediaStore, sha256_file
from storage.repository import AlreadyExists, NotFound, SqlRepository

__all__ = [
    "AlreadyExists",
    "Database",
    "MediaStore",
    "NotFound",
    "SqlRepository",
    "StorageError",
    "default_database_url",
    "open_database",
    "sha256_file",
]
