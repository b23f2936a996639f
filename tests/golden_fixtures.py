"""Golden files: expected outputs kept in the repository, compared exactly, rewritten only on request.

    python -m pytest tests/monitor/test_reports.py --update-golden
    PROVENANCE_UPDATE_GOLDEN=1 python -m pytest tests/monitor/test_reports.py

A test that finds its output changed fails with a diff; with the flag it
writes the new output instead (review it with `git diff` before committing).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


def pytest_addoption(parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite the golden files under tests/golden/ instead of comparing with them "
                          "(or set PROVENANCE_UPDATE_GOLDEN=1)")


class Golden:
    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, actual: str) -> None:
        path = GOLDEN_DIR / name
        if self.update:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(actual, encoding="utf-8")
            return
        if not path.exists():
            pytest.fail(f"no golden file {path}; create it with --update-golden (or PROVENANCE_UPDATE_GOLDEN=1)")
        expected = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = "".join(list(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                                     f"golden/{name}", "actual"))[:80])
            pytest.fail(f"output differs from golden/{name} (if the change is intended, rerun with "
                        f"--update-golden and review the diff):\n{diff}", pytrace=False)


@pytest.fixture(scope="session")
def golden(request) -> Golden:
    return Golden(request.config.getoption("--update-golden") or os.environ.get("PROVENANCE_UPDATE_GOLDEN") == "1")
