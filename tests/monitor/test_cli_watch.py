"""`provenance watch`, `run-once` and `polls`, in-process against a local feed, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.cli.watch import format_interval, parse_interval
from tests.monitor.test_poll import Site, rfc822, site  # noqa: F401 (fixtures)

TEST_CONFIG = """
[ytdlp]
retries = 0
socket_timeout = 5

[poll]
retry_base_seconds = 60
"""


class Provenance:
    """Runs `provenance` in-process against one data dir, database and config."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        config = tmp_path / "config.toml"
        config.write_text(TEST_CONFIG)
        self.base = ["--data-dir", str(tmp_path / "data"), "--db", db_url, "--config", str(config)]

    def __call__(self, *args: str, expect: int = 0):
        result = CliRunner().invoke(cli, [*self.base, *args], catch_exceptions=False)
        assert result.exit_code == expect, f"exit {result.exit_code}: {result.output}"
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def prov(tmp_path, database_url) -> Provenance:
    return Provenance(tmp_path, database_url)


def test_watch_lifecycle(prov):
    added = prov.json("watch", "add", "https://example.org/news/video.rss", "--every", "2h", "--label", "News")
    assert (added["kind"], added["interval_seconds"], added["label"], added["enabled"]) == ("rss", 7200, "News", True)
    tg = prov.json("watch", "add", "https://t.me/s/examplechannel")
    assert (tg["kind"], tg["every"]) == ("telegram", "30m")  # [watch] default_interval

    table = prov("watch", "list").stdout
    assert "News" in table and "2h" in table and "never" in table and "…" not in table

    assert prov("watch", "pause", str(added["id"])).stdout.strip() == f"watch {added['id']} paused"
    assert [w["enabled"] for w in prov.json("watch", "list")] == [False, True]
    prov("watch", "resume", str(added["id"]))
    prov("watch", "remove", str(tg["id"]))
    assert [w["id"] for w in prov.json("watch", "list")] == [added["id"]]

    for command in ("remove", "pause", "resume"):
        result = prov("watch", command, "99", expect=2)
        assert result.stderr.strip() == "error: no watch with id 99; see `provenance watch list`"
    refused = prov("watch", "add", "ftp://example.org/clip", expect=2)
    assert refused.stderr.startswith("error: cannot watch 'ftp://example.org/clip'")
    assert "--every" in prov("watch", "add", "https://example.org/a.rss", "--every", "5s", expect=2).stderr


def test_run_once_polls_and_names_failures(prov, site, tiny_clips):
    good, missing = site.file("/good.mp4", tiny_clips["testsrc2"]), site.url("/missing.mp4")
    feed = site.rss("/feed.rss", [("Good", rfc822(datetime(2024, 3, 1, 9, tzinfo=UTC)), good),
                                  ("Missing", rfc822(datetime(2024, 3, 2, tzinfo=UTC)), missing)])
    watch = prov.json("watch", "add", feed, "--every", "10m")

    out = prov("run-once").stdout

    assert f"watch {watch['id']} {feed}: 2 listed, 1 new, 1 failed" in out
    assert f"failed (http-404): {missing}: HTTP 404 Not Found from {missing}" in out
    (summary,) = prov.json("run-once", "--watch", str(watch["id"]))
    assert (summary["status"], summary["items_new"], summary["items_failed"], summary["items_waiting"]) == (
        "ok", 0, 0, 1)  # the failed item waits for its retry time
    polls = prov.json("polls", "--watch", str(watch["id"]))
    assert [(p["status"], p["items_new"], p["items_failed"]) for p in polls] == [("ok", 0, 0), ("partial", 1, 1)]
    assert (polls[1]["errors"][0]["url"], polls[1]["errors"][0]["kind"]) == (missing, "http-404")
    assert "partial" in prov("polls").stdout


def test_run_once_exits_1_when_nothing_could_run(prov, site):
    assert "no enabled watches" in prov("run-once", expect=1).stderr
    prov("watch", "add", site.url("/gone.rss"))
    result = prov("run-once", expect=1)
    assert "listing failed (http-404)" in result.stdout and "no watch could be listed" in result.stderr
    assert result.stdout.count(site.url("/gone.rss")) == 2  # the watch, then where the 404 came from: once each
    assert prov("run-once", "--watch", "7", expect=2).stderr.strip() == (
        "error: no watch with id 7; see `provenance watch list`")


def test_run_once_prints_hostile_urls_and_titles_as_text(prov, site, hostile):
    evil = site.url("/[/]x[link=javascript:alert(1)]y[/link]\u202e.mp4")
    feed = hostile.feed(site.prefix + "/evil.rss", [("[bold]title[/] \x1b[2J", evil), ("js", "javascript:alert(1)"),
                                                    ("broken", "http://[::1/broken.mp4")])
    prov("watch", "add", feed)

    out = prov("run-once").stdout  # rich would have failed on "[/]" as markup

    assert "3 listed, 0 new, 3 failed" in out
    assert "failed (http-404): " + evil.replace("\u202e", "\\u202e") + ": HTTP 404" in out
    assert "failed (unsupported): javascript:alert(1): " in out
    assert "failed (unsupported): http://[::1/broken.mp4: " in out
    assert "partial" in prov("polls").stdout  # the table shows them too (without failing on the markup)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200), ("1d", 86400), ("600", 600)])
def test_parse_interval(text, seconds):
    assert parse_interval(text) == seconds
    assert parse_interval(format_interval(seconds)) == seconds


@pytest.mark.parametrize("text", ["5s", "often", "1w", ""])
def test_parse_interval_refuses(text):
    with pytest.raises(click.BadParameter):
        parse_interval(text)


@pytest.mark.parametrize("command", [["watch"], ["watch", "add"], ["watch", "list"], ["watch", "remove"],
                                     ["watch", "pause"], ["watch", "resume"], ["run-once"], ["polls"], ["daemon"]])
def test_every_command_help_has_an_example(command):
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0 and "Example:" in result.output


@pytest.mark.parametrize("width", [60, 80, 140])
def test_watch_list_never_cuts_a_url(repository, width):
    import os

    from rich.console import Console

    from monitor.cli.watch import print_watches

    long_url = "https://www.youtube.com/feeds/videos.xml?channel_id=UCabcdefghijklmnopqrstuv&extra=" + "x" * 40
    first = repository.add_watch(long_url, "atom", "A long label [bold]not markup[/bold]", 3600)
    repository.add_watch("https://t.me/s/examplechannel", "telegram", None, 600)
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, file=sink)
        print_watches(console, repository.list_watches(), {first.id: 7})
        text = console.export_text()
    lines = text.splitlines()
    assert f"    {long_url}" in lines and "    https://t.me/s/examplechannel" in lines
    assert "[bold]not" in text and "…" not in text  # labels are text, not markup
