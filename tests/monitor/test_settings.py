"""Settings are checked at start (one `error:` line per problem, exit 1, no traceback); implausible dates."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.jobs.poll import poll_watch
from tests.monitor.test_poll import CountingSource, rfc822, site, workspace  # noqa: F401 (fixtures)


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("options, message", [
    (["--db", "mysql://user@host/provenance"], "error: database URL scheme 'mysql' is not supported"),
    (["--db", "garbage"], "error: database URL 'garbage' is not a URL"),
    (["--data-dir", "/proc/nope"], "error: data dir /proc/nope is inside /proc"),
    (["--data-dir", "/etc/passwd"], "error: data dir /etc/passwd is not a directory"),
])
def test_unusable_database_or_data_dir_is_one_line_and_exit_1(tmp_path, options, message):
    if "--data-dir" not in options:
        options = [*options, "--data-dir", str(tmp_path / "data")]
    result = run(*options, "watch", "list")
    assert result.exit_code == 1
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


def test_every_bad_setting_is_named_at_start(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[poll]\nretry_base_seconds = "soon"\n\n[daemon]\nworkers = 0\nnap = 1\nrunner = "cron"\n'
                      '\n[ytdlp]\nconcurrent_per_domain = 2.5\n')
    result = run("--config", str(config), "--data-dir", str(tmp_path / "data"), "run-once")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith(f"error: {config}: ") for line in lines), lines
    assert sorted(line.split(": ", 2)[2] for line in lines) == sorted([
        "unknown setting 'daemon.nap' in the config file: see config.toml for the list",
        "[poll] retry_base_seconds must be a whole number, got 'soon'",
        "[daemon] workers must be at least 1, got 0",
        "[daemon] runner must be one of auto, embedded, queue, got 'cron'",
        "[ytdlp] concurrent_per_domain must be a whole number, got 2.5",
    ])


def test_queue_runner_needs_postgresql(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[daemon]\nrunner = "queue"\n')
    result = run("--config", str(config), "--data-dir", str(tmp_path / "data"), "daemon")
    assert result.exit_code == 1 and "needs a PostgreSQL database" in result.stderr


@pytest.mark.parametrize("date", ["9999-12-31", "1970-01-01T00:00:00Z", "1989-12-31"])
def test_implausible_published_at_is_refused(tmp_path, date):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not read: the date is refused first")
    result = run("--data-dir", str(tmp_path / "data"), "ingest", str(clip), "--published-at", date)
    assert result.exit_code == 2 and "cannot be a publication time" in result.stderr, result.output


@pytest.mark.parametrize("db_backend", ["sqlite"])
def test_implausible_platform_date_is_kept_aside_not_claimed(workspace, site, tiny_clips):
    future = site.file("/future.mp4", tiny_clips["testsrc2"])
    fine = site.file("/fine.mp4", tiny_clips["mandelbrot"])
    feed = site.rss("/feed.rss", [("future", "Fri, 31 Dec 9999 23:59:59 GMT", future),
                                  ("fine", rfc822(datetime(2024, 3, 1, 9, tzinfo=UTC)), fine)])
    watch = workspace.repository.add_watch(feed, "rss")

    summary = poll_watch(workspace, watch, CountingSource())

    assert (summary.items_new, summary.items_failed) == (2, 0)
    post = workspace.repository.get_post_by_archive_key(f"generic {future}")
    assert (post.published_at, post.published_precision, post.published_source) == (None, None, None)
    flagged = post.raw_metadata["implausible_claim"]
    assert flagged["published_at"].startswith("9999-12-31") and "future" in flagged["reason"]
    assert workspace.repository.get_post_by_archive_key(f"generic {fine}").published_at == datetime(
        2024, 3, 1, 9, tzinfo=UTC)


def test_a_retired_matching_setting_says_what_to_do(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("[matching]\ncopies_not_crowd = true\n")
    result = run("--config", str(config), "--data-dir", str(tmp_path / "data"), "watch", "list")
    assert result.exit_code == 1
    assert "copies_not_crowd" in result.stderr and "delete the line" in result.stderr, result.stderr
    assert "Traceback" not in result.output
