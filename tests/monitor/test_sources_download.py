"""Listing and downloading against the local HTTP server: every watch kind and failure."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.sources import (
    SOURCE_TELEGRAM_TIME,
    DownloadFailed,
    ListedItem,
    ListingFailed,
    NotAVideo,
    YtDlpSource,
)
from storage.records import (
    PRECISION_DAY,
    PRECISION_SECOND,
    SOURCE_ATOM_PUBLISHED,
    SOURCE_HTTP_LAST_MODIFIED,
    SOURCE_JSONLD_UPLOAD_DATE,
    SOURCE_RSS_PUBDATE,
)

DATA = Path(__file__).parent / "data"
MODIFIED = datetime(2024, 2, 20, 7, 30, 15, tzinfo=UTC)


@pytest.fixture(scope="session")
def clip(tiny_clips) -> Path:
    return tiny_clips["testsrc2"]


@pytest.fixture(scope="session")
def source() -> YtDlpSource:
    return YtDlpSource({"retries": 0, "socket_timeout": 5})


@pytest.fixture
def workdir(tmp_path) -> Path:
    return tmp_path / "work"


def serve_template(http_server, path: str, name: str, content_type: str) -> str:
    return http_server.add_template(path, (DATA / name).read_text(), content_type)


def assert_only_inside(workdir: Path) -> None:
    """Nothing left behind: the work dir is empty (or absent), and nothing was written beside it."""
    assert not workdir.exists() or not any(workdir.rglob("*")), list(workdir.rglob("*"))
    assert [p.name for p in workdir.parent.iterdir()] in ([], ["work"])


def test_direct_mp4_claims_last_modified(http_server, source, clip, workdir):
    url = http_server.add_file("/direct/clip.mp4", clip, "video/mp4", last_modified=MODIFIED)

    (item,) = source.list_items(url)
    got = source.download(item, workdir)

    assert item.archive_key == f"generic {url}"
    assert got.path.parent.parent == workdir and got.path.suffix == ".mp4"
    assert (got.path.parent / "media.info.json").is_file()
    post = got.post
    assert (post.published_at, post.published_precision, post.published_source) == (
        MODIFIED, PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED)
    assert post.platform == "127.0.0.1" and post.url == url and post.archive_key == item.archive_key
    assert post.raw_metadata["yt_dlp"]["extractor_key"] == "Generic"


def test_rss_feed_lists_and_downloads_with_pubdates(http_server, source, clip, workdir):
    for name in ("one", "two", "three"):
        http_server.add_file(f"/rss/{name}.mp4", clip, "video/mp4", last_modified=MODIFIED)
    url = serve_template(http_server, "/rss/feed.xml", "rss.xml", "application/rss+xml")

    items = source.list_items(url, "rss")

    assert [i.url for i in items] == [http_server.url(f"/rss/{n}.mp4") for n in ("one", "two", "three")]
    assert [i.archive_key for i in items] == [f"generic {i.url}" for i in items]
    posts = [source.download(item, workdir / str(n)).post for n, item in enumerate(items)]
    assert [(p.published_at, p.published_precision, p.published_source) for p in posts] == [
        (datetime(2024, 3, 1, 12, 0, 5, tzinfo=UTC), PRECISION_SECOND, SOURCE_RSS_PUBDATE),
        (datetime(2024, 3, 2, 7, 30, tzinfo=UTC), PRECISION_SECOND, SOURCE_RSS_PUBDATE),
        # a date-only pubDate loses to the file's second-precision Last-Modified, and is kept
        (MODIFIED, PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED),
    ]
    kept = posts[2].raw_metadata["claims"]
    assert {"at": "2024-03-03T00:00:00+00:00", "precision": PRECISION_DAY, "source": SOURCE_RSS_PUBDATE} in kept
    assert posts[0].title == "First clip" and posts[0].raw_metadata["listing"]["guid"] == "clip-1"


def test_generic_listing_url_is_sniffed_as_rss(http_server, source, clip):
    url = serve_template(http_server, "/sniff/feed", "rss.xml", "text/xml")
    assert source.list_items(url, "listing")[0].claimed.source == SOURCE_RSS_PUBDATE


def test_atom_feed(http_server, source, clip, workdir):
    http_server.add_file("/atom/a.mp4", clip, "video/mp4")
    http_server.add_file("/atom/b.mp4", clip, "video/mp4")
    url = serve_template(http_server, "/atom/feed.xml", "atom.xml", "application/atom+xml")

    items = source.list_items(url, "atom")

    assert [i.title for i in items] == ["Atom clip A", "Atom clip B"]
    assert items[1].claimed.at == datetime(2024, 3, 6, 23, 0, tzinfo=UTC)
    post = source.download(items[0], workdir).post
    assert (post.published_at, post.published_source) == (datetime(2024, 3, 4, 9, 15, tzinfo=UTC), SOURCE_ATOM_PUBLISHED)
    assert post.raw_metadata["listing"]["updated"] == "2024-03-05T10:00:00+00:00"


def test_og_video_page(http_server, source, clip, workdir):
    http_server.add_file("/og/clip.mp4", clip, "video/mp4", last_modified=MODIFIED)
    url = serve_template(http_server, "/og/page.html", "og_video.html", "text/html; charset=utf-8")

    (item,) = source.list_items(url)  # an unknown http page: sniffed, then yt-dlp's generic extraction
    got = source.download(item, workdir)

    assert item.url == url
    assert got.post.title == "Harbour fire, eyewitness video"
    assert (got.post.published_at, got.post.published_source) == (MODIFIED, SOURCE_HTTP_LAST_MODIFIED)


def test_jsonld_video_object_page(http_server, source, clip, workdir):
    http_server.add_file("/jsonld/clip.mp4", clip, "video/mp4")
    url = serve_template(http_server, "/jsonld/page.html", "jsonld.html", "text/html")

    post = source.download(ListedItem(url=url, archive_key=None), workdir).post

    assert (post.published_at, post.published_precision, post.published_source) == (
        datetime(2024, 3, 7, tzinfo=UTC), PRECISION_DAY, SOURCE_JSONLD_UPLOAD_DATE)
    assert post.archive_key == f"generic {url}"


def test_telegram_channel_page(http_server, source, clip, workdir):
    http_server.add_file("/tg/4521.mp4", clip, "video/mp4")
    url = serve_template(http_server, "/s/examplechannel", "telegram_channel.html", "text/html")

    items = source.list_items(url, "telegram")

    (item,) = items  # the text-only post is not listed
    assert item.url == http_server.url("/tg/4521.mp4")  # off t.me: the <video src>
    assert item.extra["post_url"] == "https://t.me/examplechannel/4521"
    post = source.download(item, workdir).post
    assert (post.published_at, post.published_precision, post.published_source) == (
        datetime(2024, 3, 2, 12, 0, 1, tzinfo=UTC), PRECISION_SECOND, SOURCE_TELEGRAM_TIME)
    assert post.original_url == "https://t.me/origin_channel/77"


def test_http_404(http_server, source, workdir):
    url = http_server.add_status("/missing.mp4", 404)
    pattern = r"^HTTP 404 Not Found from http://127\.0\.0\.1:\d+/missing\.mp4$"
    with pytest.raises(DownloadFailed, match=pattern) as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    assert caught.value.kind == "http-404"
    assert_only_inside(workdir)


def test_connection_refused(http_server, source, workdir):
    url = http_server.refused_url("/clip.mp4")
    with pytest.raises(DownloadFailed, match=r"^connection refused by 127\.0\.0\.1:\d+; is the server up\?$") as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    assert caught.value.kind == "refused"
    assert_only_inside(workdir)


def test_transfer_cut_short(http_server, source, clip, workdir):
    data = clip.read_bytes()
    url = http_server.add_cut_short("/cut.mp4", data, "video/mp4", send=len(data) // 3)
    with pytest.raises(DownloadFailed, match=r"^transfer cut short") as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    assert caught.value.kind == "cut-short" and "\n" not in str(caught.value)
    assert_only_inside(workdir)


def test_truncated_mp4_served_whole(http_server, source, clip, workdir):
    data = clip.read_bytes()
    url = http_server.add_file("/truncated.mp4", data[: len(data) // 2], "video/mp4")
    with pytest.raises(NotAVideo, match=r"did not give a playable video: ") as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    assert caught.value.kind == "corrupt" and "\n" not in str(caught.value)
    assert_only_inside(workdir)


def test_non_video_page(http_server, source, workdir):
    url = serve_template(http_server, "/about.html", "not_video.html", "text/html")
    with pytest.raises(NotAVideo, match=r"^no video found at http://127\.0\.0\.1:\d+/about\.html") as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    assert caught.value.kind == "not-a-video"
    assert_only_inside(workdir)


def test_listing_a_missing_feed(http_server, source):
    url = http_server.url("/no/feed.xml")
    with pytest.raises(ListingFailed) as caught:
        source.list_items(url, "rss")
    assert (caught.value.kind, str(caught.value)) == ("http-404", f"HTTP 404 Not Found from {url}")


def test_feed_with_doctype_is_refused(http_server, source):
    url = http_server.add_file(
        "/evil.xml", '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><rss><channel/></rss>', "text/xml")
    with pytest.raises(ListingFailed, match="DOCTYPE") as caught:
        source.list_items(url, "rss")
    assert caught.value.kind == "bad-response"
