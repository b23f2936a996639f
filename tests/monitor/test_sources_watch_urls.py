"""Which spellings are one watch, what a typed URL is stored as, and what the add-time look accepts."""

from __future__ import annotations

import pytest

from monitor.sources.check import NotAListing, advertised_feeds, check_watch
from monitor.sources.classify import classify_watch_url
from monitor.sources.fetch import Fetcher
from monitor.sources.watch_urls import same_watch_key, telegram_channel, watch_url

SAME = [
    ("https://example.org/videos", ["HTTPS://EXAMPLE.ORG/videos", "http://example.org/videos/",
                                    "https://www.example.org/videos", "https://m.example.org/videos",
                                    "https://example.org:443/videos", "https://example.org//videos#top",
                                    "https://example.org/videos?utm_source=x&utm_medium=y&fbclid=z"]),
    ("https://www.youtube.com/playlist?list=PL1&index=2", ["https://youtube.com/playlist?index=2&list=PL1&si=abc"]),
    ("https://t.me/s/Example_Channel", ["https://t.me/example_channel", "http://telegram.me/s/EXAMPLE_CHANNEL",
                                        "https://www.t.me/Example_Channel/"]),
]
DIFFERENT = [
    ("https://example.org/videos", "https://example.org/Videos"),  # paths are case-sensitive on many sites
    ("https://example.org/videos", "https://example.org:8080/videos"),
    ("https://example.org/videos", "https://example.net/videos"),
    ("https://www.youtube.com/watch?v=aaaaaaaaaaa", "https://www.youtube.com/watch?v=bbbbbbbbbbb"),
    ("https://t.me/s/example_channel", "https://t.me/example_channel/12"),  # the channel, one of its posts
]


@pytest.mark.parametrize("url, spellings", SAME)
def test_spellings_of_one_address_have_one_key(url, spellings):
    assert {same_watch_key(s) for s in spellings} == {same_watch_key(url)}


@pytest.mark.parametrize("one, other", DIFFERENT)
def test_different_addresses_have_different_keys(one, other):
    assert same_watch_key(one) != same_watch_key(other)


@pytest.mark.parametrize("typed, stored, kind", [
    ("t.me/examplechannel", "https://t.me/s/examplechannel", "telegram"),
    ("https://t.me/examplechannel", "https://t.me/s/examplechannel", "telegram"),
    ("https://telegram.me/s/examplechannel", "https://t.me/s/examplechannel", "telegram"),
    ("https://t.me/examplechannel/123", "https://t.me/examplechannel/123", "listing"),  # yt-dlp's TelegramEmbed
    ("  example.org/news/feed.rss ", "https://example.org/news/feed.rss", "rss"),
    ("127.0.0.1:8000/clip.mp4", "http://127.0.0.1:8000/clip.mp4", "post"),
    ("https://example.com/", "https://example.com/", "listing"),
])
def test_what_a_typed_url_is_stored_as(typed, stored, kind):
    assert watch_url(typed) == stored
    assert classify_watch_url(watch_url(typed)) == kind


@pytest.mark.parametrize("url", ["https://t.me/joinchat/AbCdEf", "https://t.me/+AbCdEfGh", "https://t.me/addstickers/x",
                                 "https://t.me/s/", "https://example.org/s/channel", "ftp://t.me/channel"])
def test_telegram_urls_that_are_not_channels(url):
    assert telegram_channel(url) is None


def test_advertised_feeds_are_absolute_and_in_page_order():
    html = (b'<link rel="stylesheet" href="/a.css"><LINK REL="alternate" TYPE="application/atom+xml" href=/atom>'
            b"<link type='application/rss+xml' rel='alternate nofollow' href='https://feeds.example/rss'>")
    assert advertised_feeds(html, "https://example.org/news/") == ["https://example.org/atom",
                                                                    "https://feeds.example/rss"]


def test_the_look_at_a_channel_page(http_server):
    fetcher = Fetcher(socket_timeout=5)
    info = http_server.add_template("/check/info.html", '<div class="tgme_channel_info">x</div>', "text/html")
    assert check_watch(info, "telegram", fetcher) == f"the channel at {info} shows no posts yet"
    talk = http_server.add_template("/check/talk.html", '<div class="tgme_widget_message" data-post="c/1">'
                                    '<div class="tgme_widget_message_text">hello</div></div>', "text/html")
    assert check_watch(talk, "telegram", fetcher).startswith("none of the latest 1 posts")
    person = http_server.add_template("/check/person.html", "<html><body>A person</body></html>", "text/html")
    with pytest.raises(NotAListing, match="shows no public channel"):
        check_watch(person, "telegram", fetcher)


def test_the_look_at_a_direct_file_reads_only_its_headers(http_server):
    clip = http_server.add_file("/check/clip.mp4", b"\0" * 10_000_000, "video/mp4")
    fetcher = Fetcher(socket_timeout=5)
    assert check_watch(clip, "post", fetcher) is None
    assert check_watch(clip, "listing", fetcher) == f"{clip} serves a single video/mp4 file: each poll checks it again"


@pytest.mark.parametrize("unit", [b"<meta ", b"<link ", b'"@type" ', b"<link " + b"a" * 1990 + b"="])
def test_the_look_at_a_hostile_page_takes_time_in_proportion_to_it(http_server, unit):
    """Unclosed tags repeated: a pattern that rescans from each tag took a minute for 120 KB of "<meta "."""
    import time

    body = unit * (2_000_000 // len(unit))
    url = http_server.add_file(f"/check/hostile-{len(unit)}-{unit[:3].hex()}.html", body, "text/html")
    started = time.perf_counter()
    with pytest.raises(NotAListing):
        check_watch(url, "listing", Fetcher(socket_timeout=5))
    assert time.perf_counter() - started < 10  # about a quarter of a second here; minutes when quadratic
