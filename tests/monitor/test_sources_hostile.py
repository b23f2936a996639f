"""Hostile items end as recorded failures of their kind, bounded by the [limits] settings.

Small limits keep every case short: bombs stop at a few MiB, the three-hour
video at its probe, and drip-fed transfers, which would take minutes, at a
deadline of a few seconds (only those tests have a short one, so a busy
machine cannot make an honest download late).  Nothing here asserts a time;
a limit that did not hold would show as a wrong kind (or a test that never ends).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from fingerprints.model import FingerprintSettings
from monitor.analysis import InputError, analyse_file
from monitor.limits import parse_limits
from monitor.sources import LimitExceeded, ListedItem, ListingFailed, NotAVideo, SourceError, YtDlpSource
from monitor.sources.fetch import Fetcher
from monitor.sources.platforms import MAX_ARCHIVE_KEY
from tests.hostile_fixtures import HOSTILE_TITLES
from tests.monitor.test_sources_failures import HANDLERS

SMALL = {"item_deadline_seconds": 300, "max_download_bytes": "4M", "max_page_bytes": "256K",
         "max_duration_seconds": 600, "max_pixels": 1_000_000, "max_frames": 5000, "max_redirects": 3}
LIMITS = parse_limits(SMALL)
DEADLINE = parse_limits({**SMALL, "item_deadline_seconds": 3})


@pytest.fixture(scope="module")
def clip(tiny_clips) -> bytes:
    return tiny_clips["testsrc2"].read_bytes()


@pytest.fixture(scope="module")
def source() -> YtDlpSource:
    return YtDlpSource({"retries": 0, "socket_timeout": 5}, limits=LIMITS)


def failure(source: YtDlpSource, url: str, workdir: Path) -> SourceError:
    with pytest.raises(SourceError) as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    assert not workdir.exists() or not any(workdir.rglob("*"))
    return caught.value


def test_drip_fed_download_stops_at_the_deadline(hostile, clip, tmp_path):
    url = hostile.drip("/hostile/drip.mp4", clip, rate=len(clip) // 120)  # two minutes for the whole clip
    error = failure(YtDlpSource({"retries": 0, "socket_timeout": 5}, limits=DEADLINE), url, tmp_path)
    assert (type(error), error.kind) == (LimitExceeded, "too-slow")
    assert "longer than 3 s (item_deadline_seconds)" in str(error)


def test_drip_fed_feed_stops_at_the_deadline(hostile):
    url = hostile.drip("/hostile/drip.rss", b"<rss><channel>" + b" " * 200_000, "application/rss+xml", rate=2000)
    with pytest.raises(ListingFailed) as caught:
        YtDlpSource({"socket_timeout": 5}, limits=DEADLINE).list_items(url, "rss")
    assert caught.value.kind == "too-slow"


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_feed_bomb_stops_at_max_page_bytes_while_unpacking(hostile, source, encoding):
    url = hostile.bomb(f"/hostile/bomb-{encoding}.rss", 2**30, "application/rss+xml", encoding=encoding)
    with pytest.raises(ListingFailed) as caught:
        source.list_items(url, "rss")
    assert caught.value.kind == "too-large" and "once unpacked" in str(caught.value)


def test_fetcher_unpacks_what_it_asked_for_and_refuses_the_rest(hostile):
    fetcher = Fetcher(LIMITS)
    text = b"<rss>" + b"<item/>" * 1000 + b"</rss>"
    assert fetcher.get(hostile.encoded("/hostile/ok.rss", zlib.compress(text), "text/xml", "deflate")).body == text
    with pytest.raises(SourceError) as caught:
        fetcher.get(hostile.encoded("/hostile/br.rss", b"\x0b\x02\x80hello\x03", "text/xml", "br"))
    assert caught.value.kind == "bad-response"


@pytest.mark.parametrize("handler", HANDLERS)
def test_enclosure_bomb_stops_at_max_download_bytes(hostile, tmp_path, handler):
    url = hostile.bomb(f"/hostile/bomb-{handler}.mp4", 2**30, "video/mp4")
    error = failure(YtDlpSource(HANDLERS[handler], limits=LIMITS), url, tmp_path)
    assert error.kind == "too-large", str(error)


@pytest.mark.parametrize("name", ["still_png", "still_jpeg"])
def test_still_image_served_as_mp4_is_not_a_video(http_server, hostile_media, source, tmp_path, name):
    url = http_server.add_file(f"/hostile/{name}.mp4", getattr(hostile_media, name), "video/mp4")
    error = failure(source, url, tmp_path)
    assert (type(error), error.kind) == (NotAVideo, "not-a-video")
    assert "is a still image" in str(error)


@pytest.mark.parametrize("name, kind", [("long_tiny", "too-long"), ("big_picture", "too-many-pixels")])
def test_costly_videos_are_refused_before_decoding(http_server, hostile_media, source, tmp_path, name, kind):
    url = http_server.add_file(f"/hostile/{name}.mp4", getattr(hostile_media, name), "video/mp4")
    assert failure(source, url, tmp_path).kind == kind


@pytest.mark.parametrize("name, limits, kind", [
    ("long_tiny", {"max_duration_seconds": 600}, "too-long"),
    ("big_picture", {"max_pixels": 1_000_000}, "too-many-pixels"),
    ("still_jpeg", {}, "not-a-video"),
])
def test_analysis_applies_the_same_limits_to_local_files(hostile_media, name, limits, kind):
    with pytest.raises(InputError) as caught:
        analyse_file(getattr(hostile_media, name), FingerprintSettings(), describe=False, limits=parse_limits(limits))
    assert caught.value.kind == kind


def test_too_many_frames(tiny_clips):
    with pytest.raises(InputError) as caught:  # 2 s at 10 fps
        analyse_file(tiny_clips["life"], FingerprintSettings(), describe=False, limits=parse_limits({"max_frames": 10}))
    assert caught.value.kind == "too-many-frames"


def test_five_thousand_items_are_listed(hostile):
    items = YtDlpSource({}).list_items(hostile.huge_feed("/hostile/huge/feed.rss", 5000), "rss")
    assert len(items) == 5000 and len({i.archive_key for i in items}) == 5000
    assert all(i.archive_key == f"generic {i.url}" for i in items)


def test_hostile_titles_and_urls_are_listed_as_data(http_server, hostile, source):
    long_url = http_server.url("/hostile/" + "x" * 3000 + ".mp4")
    items = [(title, http_server.url(f"/hostile/{name}.mp4")) for name, title in HOSTILE_TITLES.items()]
    items += [("script url", "javascript:alert(document.cookie)"), ("long url", long_url),
              ("broken url", "http://[::1/broken.mp4")]
    listed = {i.title: i for i in source.list_items(hostile.feed("/hostile/titles.rss", items), "rss")}

    assert listed[HOSTILE_TITLES["html"]].title == HOSTILE_TITLES["html"]  # text, escaped only when shown
    assert listed[HOSTILE_TITLES["rtl"]].title == HOSTILE_TITLES["rtl"]
    assert "RED ALERT" in next(t for t in listed if t.startswith("[31mRED"))  # ESC and BEL dropped, not the feed
    assert len(listed[HOSTILE_TITLES["long"].strip()].title) > 100_000
    assert listed["script url"].url == "javascript:alert(document.cookie)"
    assert len(listed["long url"].archive_key) <= MAX_ARCHIVE_KEY
    assert listed["broken url"].url == "http://[::1/broken.mp4"  # kept, to be refused as unsupported
