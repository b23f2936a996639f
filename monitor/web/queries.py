"""Query results of the web application: the report of a dropped video or a pasted URL, kept a while.

A query keeps its file (the upload, or the download of a URL) and its
analysis, so the same page can then track the footage (stored without
fingerprinting it again) or export an evidence bundle of the report.  Each
query lives in its own directory under DATA_DIR/web/queries/<token>; only its
owner (or an admin) can open it; the oldest are removed beyond `KEEP`.
"""

from __future__ import annotations

import secrets
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.analysis import AnalysedFile
from monitor.jobs.earliest import EarliestReport
from storage.records import NewPost

KEEP = 20
SUBDIR = Path("web") / "queries"


@dataclass
class QueryResult:
    token: str
    owner: str
    name: str  # the file name as uploaded, or the URL as given
    directory: Path
    analysed: AnalysedFile
    report: EarliestReport
    report_html: Path
    post: NewPost  # how the query's file would be stored if someone tracks it
    created_at: datetime
    tracked_id: int | None = None


class QueryResults:
    """The newest `KEEP` query results, in memory and on disk (cleared when the server starts)."""

    def __init__(self, data_dir: Path, keep: int = KEEP) -> None:
        self.root = Path(data_dir) / SUBDIR
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self.keep = keep
        self._results: OrderedDict[str, QueryResult] = OrderedDict()
        self._lock = threading.Lock()

    def new_directory(self) -> tuple[str, Path]:
        token = secrets.token_urlsafe(18)
        directory = self.root / token
        directory.mkdir()
        return token, directory

    def add(self, result: QueryResult) -> None:
        with self._lock:
            self._results[result.token] = result
            while len(self._results) > self.keep:
                _, old = self._results.popitem(last=False)
                shutil.rmtree(old.directory, ignore_errors=True)

    def get(self, token: str, owner: str, is_admin: bool) -> QueryResult | None:
        with self._lock:
            result = self._results.get(token)
        if result is None or (result.owner != owner and not is_admin):
            return None
        return result

    def discard(self, directory: Path) -> None:
        shutil.rmtree(directory, ignore_errors=True)


def now() -> datetime:
    return datetime.now(UTC)
