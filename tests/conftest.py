"""Shared test fixtures live in small plugin modules, one per concern."""

pytest_plugins = [
    "tests.db_fixtures",
    "tests.video_fixtures",
    "tests.http_fixtures",
    "tests.golden_fixtures",
    "tests.tsa_fixtures",
    "tests.hostile_fixtures",
    "tests.cut_signal",
]
