"""`provenance watch`, `run-once` and `polls`, in-process against a local feed, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading
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


def test_watch_lifecycle(prov, site):
    feed = site.rss("/news/video.rss", [])
    added = prov.json("watch", "add", feed, "--every", "2h", "--label", "News")
    assert (added["kind"], added["interval_seconds"], added["label"], added["enabled"]) == ("rss", 7200, "News", True)
    assert added["note"] == f"the feed at {feed} lists no items yet; they are picked up when it does"
    tg = prov.json("watch", "add", "t.me/examplechannel", "--no-check")  # not fetched: tests never reach t.me
    assert (tg["kind"], tg["url"], tg["every"]) == ("telegram", "https://t.me/s/examplechannel", "30m")

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


def test_watch_add_refuses_a_second_watch_of_the_same_address(prov, site):
    feed = site.rss("/same.rss", [])
    first = prov.json("watch", "add", feed, "--label", "Gazette")
    port_and_path = feed.removeprefix("http://")
    for spelling in (feed + "/", "HTTP://" + port_and_path, "https://" + port_and_path, port_and_path,
                     feed + "?utm_source=share&fbclid=abc", feed + "#latest", f"  {feed}  "):
        refused = prov("watch", "add", spelling, expect=2)  # refused before any fetch
        assert refused.stderr.strip().endswith(
            f": watch {first['id']} (Gazette); see `provenance watch list`"), spelling
        assert f"is watched already as {feed}:" in refused.stderr or f"{feed} is watched already:" in refused.stderr
    prov("watch", "add", feed + "?page=2")  # another page of the site is another watch
    tg = prov.json("watch", "add", "https://t.me/s/ExampleChannel", "--no-check")
    refused = prov("watch", "add", "t.me/examplechannel", "--no-check", expect=2)
    assert f"watch {tg['id']}" in refused.stderr
    assert len(prov.json("watch", "list")) == 3


def test_two_adds_of_one_address_at_the_same_instant_store_one_watch(database):
    from storage import Database, SqlRepository
    from monitor.jobs.watches import WatchExists, prepare_watch, store_watch

    # the race's window, held open: both have passed the check before either stores
    first, second = SqlRepository(database), SqlRepository(Database(database.url))
    url_a, kind_a, _ = prepare_watch(first, "https://www.Example.org/feed.rss?utm_source=x", check=False)
    url_b, kind_b, _ = prepare_watch(second, "example.org/feed.rss/", check=False)
    stored = store_watch(first, url_a, kind_a, "first", 3600)
    with pytest.raises(WatchExists, match=f"watch {stored.id} \\(first\\)"):
        store_watch(second, url_b, kind_b, None, 3600)
    # and inside a transaction (the web form's), which the refusal rolls back
    with pytest.raises(WatchExists):
        with second.transaction() as repo:
            repo.add_audit("someone", "web", "watch.add", "x", {})
            store_watch(repo, url_b, kind_b, None, 3600)
    # truly at once, from as many connections
    barrier, outcomes = threading.Barrier(4), []

    def add(n: int) -> None:
        repository = SqlRepository(Database(database.url))
        url, kind, _ = prepare_watch(repository, "https://example.net/channel", check=False)
        barrier.wait()
        try:
            outcomes.append(store_watch(repository, url, kind, f"racer {n}", 3600).id)
        except WatchExists as refused:
            outcomes.append(f"refused: {refused.watch.id}")
        finally:
            repository.database.dispose()

    racers = [threading.Thread(target=add, args=(n,)) for n in range(4)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=60)
    winners = [o for o in outcomes if isinstance(o, int)]
    assert len(outcomes) == 4 and len(winners) == 1, outcomes
    assert sorted(outcomes, key=str)[1:] == [f"refused: {winners[0]}"] * 3
    assert [w.url for w in first.list_watches()] == [url_a, "https://example.net/channel"]
    assert first.list_audit() == []  # the refused transaction left no trail
    second.database.dispose()


def test_a_watch_of_a_very_long_address_is_stored_and_refused_the_second_time(database):
    import secrets

    from storage import SqlRepository
    from monitor.jobs.watches import WatchExists, prepare_watch, store_watch

    repository = SqlRepository(database)
    text = "https://example.org/feed.rss?q=" + secrets.token_urlsafe(15_000)  # incompressible: no index takes it
    url, kind, _ = prepare_watch(repository, text, check=False)
    stored = store_watch(repository, url, kind, None, 3600)
    assert repository.get_watch(stored.id).url == url
    with pytest.raises(WatchExists):
        store_watch(repository, url, kind, None, 3600)


def test_watch_add_refuses_a_page_without_videos_and_says_why(prov, site, http_server):
    about = site.page("/about.html", "not_video.html", "text/html")
    refused = prov("watch", "add", about, expect=2).stderr
    assert refused.startswith(f"error: {about} is a page without any video")
    home = http_server.add_template(site.prefix + "/home.html", '<html><head><link rel="alternate" '
                                    'type="application/rss+xml" href="/feeds/all.rss"></head><body>News</body></html>',
                                    "text/html")
    assert f"watch that instead: {http_server.base}/feeds/all.rss" in prov("watch", "add", home, expect=2).stderr
    escaping = http_server.add_template(site.prefix + "/hostile.html", '<link rel="alternate" type="application/rss+xml"'
                                       ' href="/x\x1b[2J.rss">', "text/html")
    said = prov("watch", "add", escaping, expect=2).stderr
    assert "\x1b" not in said and f"watch that instead: {http_server.base}/x\\x1b[2J.rss" in said
    not_a_feed = http_server.add_template(site.prefix + "/fake.rss", "<html><body>hi</body></html>", "text/html")
    assert "is not an RSS or Atom feed" in prov("watch", "add", not_a_feed, expect=2).stderr
    picture = http_server.add_file(site.prefix + "/picture", b"\x89PNG\r\n\x1a\n", "image/png")
    assert f"{picture} serves image/png, not a web page, feed or video" in prov("watch", "add", picture,
                                                                               expect=2).stderr
    missing = site.url("/missing.html")
    assert prov("watch", "add", missing, expect=2).stderr.strip() == f"error: HTTP 404 Not Found from {missing}"
    assert prov.json("watch", "list") == []

    for accepted in (site.page("/og.html", "og_video.html", "text/html"),
                     site.page("/jsonld.html", "jsonld.html", "text/html"),
                     site.page("/channel.html", "telegram_channel.html", "text/html"),
                     http_server.add_template(site.prefix + "/embed.html", '<iframe src="/player/1"></iframe>',
                                              "text/html")):
        assert prov.json("watch", "add", accepted)["kind"] == "listing"
    assert prov.json("watch", "add", about, "--no-check")["kind"] == "listing"  # the person knows better


@pytest.mark.parametrize("where", ["dns", "refused"])
def test_watch_add_reports_a_network_failure_as_one(prov, site, where):
    url = "http://nonexistent.invalid/videos" if where == "dns" else site.server.refused_url("/videos")
    error = prov("watch", "add", url, expect=2).stderr.strip()
    said = (f"cannot resolve the host name in {url} (DNS lookup failed)" if where == "dns"
            else f"connection refused by {url.split('/')[2]}; is the server up?")
    assert error.startswith(f"error: {said}") and error.endswith("use --no-check")
    assert error.count(url.split("/")[2]) == 1  # said once
    assert prov.json("watch", "add", url, "--no-check")["kind"] == "listing"


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
    prov("watch", "add", site.url("/gone.rss"), "--no-check")  # it 404s: refused unless added unchecked
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


def test_run_once_says_a_network_failure_once(tmp_path, site):
    """The real command (its logging set up as for people): the failure on stdout, no log line repeating it."""
    import os
    import subprocess
    import sys

    url = "http://nonexistent.invalid/feed.rss"
    base = [sys.executable, "-m", "monitor.cli", "--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    subprocess.run([*base, "watch", "add", url, "--no-check"], check=True, capture_output=True, env=env)
    done = subprocess.run([*base, "run-once"], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert done.stdout.strip() == (f"watch 1 {url}: listing failed (dns): cannot resolve the host name in {url} "
                                   "(DNS lookup failed); check the URL and the network")
    assert done.stderr.strip() == "error: no watch could be listed (see the errors above); check the URLs and the network"


def test_watch_add_of_a_feed_does_not_load_yt_dlp(tmp_path, site):
    """Importing yt-dlp costs a quarter of a second; a URL no extractor takes is known without it."""
    import os
    import subprocess
    import sys

    script = ("import sys; from monitor.cli.main import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print('yt_dlp loaded' if 'yt_dlp' in sys.modules else 'yt_dlp not loaded')")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    for n, loaded in enumerate(("yt_dlp loaded", "yt_dlp not loaded")):  # the first one fills the cache
        done = subprocess.run([sys.executable, "-c", script, "--data-dir", str(tmp_path / "data"), "watch", "add",
                               site.rss(f"/light-{n}.rss", [])], capture_output=True, text=True, env=env, timeout=120)
        assert done.stdout.splitlines()[0].startswith(f"watch {n + 1} added: rss ") and done.stdout.splitlines()[-1] \
            == loaded, done.stdout + done.stderr
