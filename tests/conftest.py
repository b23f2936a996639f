"""Shared test fixtures live in small plugin modules, one per concern.

Run order: the files with the most tests marked `slow` go first, each file
whole and in its own order.  With `--dist loadfile` (pyproject.toml) the
xdist workers take whole files in that order, so the long ones start at
once, the many short ones fill in at the end, and the workers finish
together; a file's module fixtures are made by one worker only.
"""

from collections import Counter

pytest_plugins = [
    "tests.db_fixtures",
    "tests.video_fixtures",
    "tests.http_fixtures",
    "tests.golden_fixtures",
    "tests.tsa_fixtures",
    "tests.hostile_fixtures",
    "tests.cut_signal",
    "tests.store_fixtures",
]


def pytest_collection_modifyitems(config, items) -> None:
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])  # stable: files stay whole and in order
