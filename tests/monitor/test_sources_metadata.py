"""Recorded-shape info dicts and listings → PostMetadata, and the offline URL rules."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.sources import DomainLimiter, ListedItem, ListingFailed, UnsupportedURL, classify_watch_url
from monitor.sources.feeds import parse_feed, rss_pubdate_claim
from monitor.sources.platforms import archive_key, post_metadata
from monitor.sources.telegram import list_channel_page, parse_channel_page
from monitor.sources.ytdlp import DEFAULT_FORMAT, ytdlp_options
from storage.records import (
    PRECISION_DAY,
    PRECISION_SECOND,
    SOURCE_RSS_PUBDATE,
    SOURCE_YTDLP_TIMESTAMP,
    SOURCE_YTDLP_UPLOAD_DATE,
)

DATA = Path(__file__).parent / "data"


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}_info.json").read_text())


def test_tiktok_info_keeps_platform_fields():
    info = recorded("tiktok")
    post = post_metadata(info, ListedItem(url=info["webpage_url"], archive_key=None))

    assert post.archive_key == "tiktok 7301234567890123456"
    assert (post.platform, post.platform_post_id) == ("tiktok", "7301234567890123456")
    assert (post.uploader, post.uploader_id, post.channel) == ("newsdesk.example", "6745191554350760966", "Newsdesk Example")
    assert (post.published_at, post.published_precision, post.published_source) == (
        datetime(2023, 11, 15, 9, 10, 10, tzinfo=UTC), PRECISION_SECOND, SOURCE_YTDLP_TIMESTAMP)
    assert (post.view_count, post.like_count, post.repost_count, post.comment_count) == (184200, 9312, 1204, 377)
    assert post.raw_metadata["yt_dlp"]["save_count"] == 210


def test_youtube_upload_date_only_is_day_precision():
    info = recorded("youtube")
    post = post_metadata(info, ListedItem(url=info["original_url"], archive_key=None))

    assert post.archive_key == "youtube dQw4w9WgXcQ"
    assert post.url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert (post.published_at, post.published_precision, post.published_source) == (
        datetime(2024, 3, 2, tzinfo=UTC), PRECISION_DAY, SOURCE_YTDLP_UPLOAD_DATE)
    assert (post.uploader, post.uploader_id, post.channel) == ("City Council", "@citycouncil", "City Council")
    assert (post.view_count, post.like_count, post.repost_count, post.comment_count) == (20931, 412, None, 57)


def test_youtube_premiere_falls_back_to_release_timestamp():
    info = recorded("youtube") | {"release_timestamp": 1709398800}
    post = post_metadata(info, ListedItem(url=info["webpage_url"], archive_key=None))
    assert (post.published_at, post.published_precision) == (datetime(2024, 3, 2, 17, 0, tzinfo=UTC), PRECISION_SECOND)


def test_telegram_info_with_channel_listing():
    info = recorded("telegram")
    item = ListedItem(
        url="https://t.me/examplechannel/4521",
        archive_key=archive_key("TelegramEmbed", "4521", "https://t.me/examplechannel/4521"),
        extra={"views": "12.4K", "author": "Example Channel", "forwarded_from": "https://t.me/origin_channel/77"},
    )
    post = post_metadata(info, item)

    assert post.archive_key == "telegramembed examplechannel/4521"  # yt-dlp's own id, 4521, repeats across channels
    assert (post.platform, post.platform_post_id, post.url) == ("telegram", "examplechannel/4521", "https://t.me/examplechannel/4521")
    assert (post.uploader, post.uploader_id, post.channel) == ("Example Channel", "examplechannel", "Example Channel")
    assert post.view_count == 12400
    assert post.original_url == "https://t.me/origin_channel/77"
    assert (post.published_at, post.published_source) == (datetime(2024, 3, 2, 12, 0, 1, tzinfo=UTC), SOURCE_YTDLP_TIMESTAMP)


def test_a_more_precise_listing_claim_wins_and_all_are_kept():
    info = recorded("youtube")  # upload_date only
    item = ListedItem(url=info["webpage_url"], archive_key=None,
                      claimed=rss_pubdate_claim("Sat, 02 Mar 2024 16:45:00 GMT"))
    post = post_metadata(info, item)
    assert (post.published_source, post.published_precision) == (SOURCE_RSS_PUBDATE, PRECISION_SECOND)
    assert [c["source"] for c in post.raw_metadata["claims"]] == [SOURCE_RSS_PUBDATE, SOURCE_YTDLP_UPLOAD_DATE]


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("https://www.tiktok.com/@scout2015", "listing"),
        ("https://www.youtube.com/@NASA", "listing"),
        ("https://www.youtube.com/channel/UC_x5XG1OV2P6uZZ5FSM9Ttw", "listing"),
        ("https://www.youtube.com/feeds/videos.xml?channel_id=UC_x5XG1OV2P6uZZ5FSM9Ttw", "atom"),
        ("https://t.me/s/durov", "telegram"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "post"),
        ("https://www.tiktok.com/@scout2015/video/6718335390845095173", "post"),
        ("https://example.org/media/clip.mp4", "post"),
        ("https://example.org/news.rss", "rss"),
        ("https://example.org/whatever", "listing"),
    ],
)
def test_classify_watch_url(url, kind):
    assert classify_watch_url(url) == kind


@pytest.mark.parametrize("url", ["ftp://example.org/clip.mp4", "garbage", "file:///etc/passwd", ""])
def test_classify_rejects_what_nothing_can_fetch(url):
    with pytest.raises(UnsupportedURL, match=r"no yt-dlp extractor accepts it .* starting with https://"):
        classify_watch_url(url)


def test_rss_dates():
    assert rss_pubdate_claim("Fri, 01 Mar 2024 13:00:05 +0100").at == datetime(2024, 3, 1, 12, 0, 5, tzinfo=UTC)
    day = rss_pubdate_claim("Sun, 03 Mar 2024")
    assert (day.at, day.precision) == (datetime(2024, 3, 3, tzinfo=UTC), PRECISION_DAY)
    assert rss_pubdate_claim("not a date") is None


def test_feed_item_urls_are_made_absolute():
    items = parse_feed((DATA / "rss.xml").read_bytes().replace(b"{base}", b"https://example.org"),
                       "https://example.org/feed.xml")
    assert items[2].url == "https://example.org/rss/three.mp4"


def test_feed_that_is_neither_rss_nor_atom():
    with pytest.raises(ListingFailed, match=r"neither RSS 2.0 nor Atom \(root element <html>\)"):
        parse_feed(b"<html><body/></html>", "https://example.org/x")


def test_telegram_page_parsing_on_t_me():
    html = (DATA / "telegram_channel.html").read_text().replace("{base}", "https://cdn4.telesco.pe/file")
    posts = parse_channel_page(html)
    assert [(p.post, p.has_video) for p in posts] == [("examplechannel/4520", False), ("examplechannel/4521", True)]
    assert posts[1].text == "Video from the scene\nforwarded by a reader"
    assert (posts[1].views, posts[1].author, posts[1].duration) == ("12.4K", "Example Channel", "0:02")

    (item,) = list_channel_page(html, "https://t.me/s/examplechannel")
    assert item.url == "https://t.me/examplechannel/4521"  # on t.me yt-dlp fetches the post, fresh CDN link and all
    assert item.claimed.at == datetime(2024, 3, 2, 12, 0, 1, tzinfo=UTC)


def test_config_maps_to_ytdlp_options():
    options = ytdlp_options({"rate_limit": "2M", "max_filesize": "500M", "retries": 3, "proxy": "socks5://127.0.0.1:9050",
                             "cookies_file": "~/cookies.txt", "sleep_requests": 1.5, "concurrent_per_domain": 2})
    assert options["ratelimit"] == 2 * 1024**2 and options["max_filesize"] == 500 * 1024**2
    assert options["retries"] == options["fragment_retries"] == 3
    assert options["cookiefile"].endswith("/cookies.txt") and not options["cookiefile"].startswith("~")
    assert (options["format"], options["merge_output_format"]) == (DEFAULT_FORMAT, "mp4")
    with pytest.raises(ValueError, match=r"unknown \[ytdlp\] option\(s\) ratelimit; known: .*rate_limit"):
        ytdlp_options({"ratelimit": "2M"})


def test_domain_limiter_caps_concurrency_per_host():
    limiter, running, peak = DomainLimiter(2), [], []
    lock = threading.Lock()

    def work(url):
        with limiter.slot(url):
            with lock:
                running.append(url)
                peak.append(sum(u == url for u in running))
            time.sleep(0.05)
            with lock:
                running.remove(url)

    threads = [threading.Thread(target=work, args=(f"https://{h}/v",)) for h in ["a.example"] * 5 + ["b.example"] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(peak) == 2


def test_extractor_index_answers_as_asking_every_extractor():
    """The fast extractor lookup (literal prefilter) against the reference, on yt-dlp's own test URLs.

    Every extractor with a `suitable` of its own, and a fixed random eighth
    of the others, one test URL each, plus feed-like URLs; a yt-dlp release
    that broke the prefilter's assumption would fail here.
    """
    import random

    from monitor.sources.classify import _extractors, extractor_for, extractor_for_by_asking_all

    extractors = _extractors()
    custom = [ie for ie in extractors if "suitable" in vars(ie)]
    others = random.Random(11).sample([ie for ie in extractors if "suitable" not in vars(ie)], len(extractors) // 8)
    urls = ["http://127.0.0.1:8000/feed/item-1.mp4", "https://example.org/news/video.rss", "https://t.me/s/channel",
            "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://www.tiktok.com/@user/video/7301234567890123456"]
    for ie in [*custom, *others]:
        cases = ie.get_testcases(include_onlymatching=True) if hasattr(ie, "get_testcases") else []
        urls += [case["url"] for case in list(cases)[:1] if isinstance(case.get("url"), str)]
    assert len(urls) > 250
    assert [u for u in urls if extractor_for(u) is not extractor_for_by_asking_all(u)] == []
    # the light answer, without yt-dlp: "none" only when yt-dlp agrees (a custom `suitable` only narrows)
    from monitor.sources.classify import no_platform_extractor

    assert [u for u in urls if no_platform_extractor(u) and extractor_for_by_asking_all(u)] == []
    assert [no_platform_extractor(u) for u in urls[:5]] == [True, True, True, False, False]  # asked: the platforms


def test_the_extractor_conditions_cache_gives_the_conditions_it_was_made_from(tmp_path, monkeypatch):
    from monitor.sources.classify import _extractors, _url_condition, cached_conditions

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    extractors = _extractors()
    made = cached_conditions(extractors)
    (cache,) = (tmp_path / "provenance").glob("extractor-conditions-*.json")
    assert cached_conditions(extractors) == made  # read back from the file
    assert all(made[ie] == _url_condition(ie) for ie in extractors[::50])
    cache.write_text('{"Youtube": 7}')  # damaged: made again, and written again
    assert cached_conditions(extractors) == made and len(cache.read_text()) > 1000
