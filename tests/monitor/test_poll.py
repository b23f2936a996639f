"""Polling watches against the local HTTP server, with real ffmpeg, exiftool and databases.

The fixtures here (tiny clips, a workspace per database, a `Site` with
unique paths on the session's HTTP server) are shared with the CLI and
daemon tests.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.workspace import Workspace
from monitor.jobs.poll import default_source, poll_all, poll_watch, retry_delay
from monitor.sources import SOURCE_TELEGRAM_TIME, DownloadedItem, ListedItem, YtDlpSource
from monitor.sources.platforms import post_metadata
from storage.mediastore import SHA256_PATTERN
from storage.records import (
    PRECISION_DAY,
    PRECISION_SECOND,
    SOURCE_ATOM_PUBLISHED,
    SOURCE_HTTP_LAST_MODIFIED,
    SOURCE_JSONLD_UPLOAD_DATE,
    SOURCE_RSS_PUBDATE,
    SOURCE_YTDLP_TIMESTAMP,
    SOURCE_YTDLP_UPLOAD_DATE,
)

DATA = Path(__file__).parent / "data"
MODIFIED = datetime(2024, 2, 20, 7, 30, 15, tzinfo=UTC)
TEST_POLL_SETTINGS = {"retry_base_seconds": 60, "retry_max_seconds": 600, "max_items_per_poll": 0}


def workspace_config(data_dir: Path, db_url: str):
    config = load_config(None, data_dir, db_url)
    config.raw["poll"] = dict(TEST_POLL_SETTINGS)
    return config


@pytest.fixture
def workspace(database_url, tmp_path):
    ws = Workspace.open(workspace_config(tmp_path / "data", database_url))
    yield ws
    ws.close()


class CountingSource(YtDlpSource):
    """The real source, counting downloads."""

    def __init__(self) -> None:
        super().__init__({"retries": 0, "socket_timeout": 5})
        self.downloads: list[str] = []

    def download(self, item, workdir):
        self.downloads.append(item.url)
        return super().download(item, workdir)


@pytest.fixture
def source() -> CountingSource:
    return CountingSource()


class Site:
    """Routes under a unique prefix on the session's server, so tests never share a URL."""

    def __init__(self, server) -> None:
        self.server = server
        self.prefix = f"/t{uuid.uuid4().hex[:10]}"

    def url(self, path: str) -> str:
        return self.server.url(self.prefix + path)

    def file(self, path: str, clip: Path | bytes, last_modified: datetime | None = None) -> str:
        return self.server.add_file(self.prefix + path, clip, "video/mp4", last_modified=last_modified)

    def page(self, path: str, data_file: str, content_type: str) -> str:
        """A file of tests/monitor/data whose `{base}` URLs are moved under this site's prefix."""
        text = (DATA / data_file).read_text().replace("{base}", "{base}" + self.prefix)
        return self.server.add_template(self.prefix + path, text, content_type)

    def rss(self, path: str, items: list[tuple[str, str, str]]) -> str:
        """An RSS 2.0 feed of (title, pubDate, enclosure URL) items."""
        body = "".join(f"<item><title>{title}</title><pubDate>{date}</pubDate>"
                       f'<enclosure url="{url}" type="video/mp4" length="1"/></item>' for title, date, url in items)
        return self.server.add_file(
            self.prefix + path, f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed</title>{body}'
                                '</channel></rss>', "application/rss+xml")


@pytest.fixture
def site(http_server) -> Site:
    return Site(http_server)


def rfc822(at: datetime) -> str:
    return format_datetime(at, usegmt=True)


def claim(post) -> tuple:
    return post.published_at, post.published_precision, post.published_source


def assert_store_clean(ws: Workspace) -> None:
    """The media tree holds only complete files named by SHA-256 that the database knows; no work left."""
    stored = {m.sha256 for m in ws.repository.list_media()}
    files = [p for p in (ws.config.data_dir / "media").rglob("*") if p.is_file()]
    assert {p.name.split(".")[0] for p in files} == stored
    assert all(SHA256_PATTERN.match(p.name.split(".")[0]) for p in files)
    work = ws.config.data_dir / "work"
    assert not work.exists() or not any(work.iterdir()), list(work.iterdir())


@pytest.mark.slow
def test_every_watch_kind_stores_each_item_once(workspace, source, site, tiny_clips):
    ws, repo = workspace, workspace.repository
    clips = [tiny_clips["testsrc2"], tiny_clips["mandelbrot"]] * 3  # few distinct files: fingerprinting is slow
    first, second = datetime(2024, 3, 1, 12, 0, 5, tzinfo=UTC), datetime(2024, 3, 2, 7, 30, tzinfo=UTC)
    feed_items = [("One", rfc822(first), site.file("/rss/1.mp4", clips[0])),
                  ("Two", rfc822(second), site.file("/rss/2.mp4", clips[1])),
                  ("Three", "Sun, 03 Mar 2024", site.file("/rss/3.mp4", clips[2]))]
    rss = site.rss("/feed.rss", feed_items)
    site.file("/atom/a.mp4", clips[3])
    site.file("/atom/b.mp4", clips[4])
    atom = site.page("/feeds/videos.xml", "atom.xml", "application/atom+xml")
    direct = site.file("/direct.mp4", clips[0], last_modified=MODIFIED)
    site.file("/og/clip.mp4", clips[1], last_modified=MODIFIED)
    og = site.page("/og.html", "og_video.html", "text/html")
    site.file("/jsonld/clip.mp4", clips[2])
    jsonld = site.page("/jsonld.html", "jsonld.html", "text/html")
    site.file("/tg/4521.mp4", clips[3])
    telegram = site.page("/s/examplechannel", "telegram_channel.html", "text/html")
    kinds = {rss: "rss", atom: "atom", direct: "post", og: "listing", jsonld: "listing", telegram: "telegram"}
    watches = {url: repo.add_watch(url, kind) for url, kind in kinds.items()}

    summaries = poll_all(ws, source=source)

    assert [(s.status, s.items_new, s.errors) for s in summaries] == [
        ("ok", 3, []), ("ok", 2, []), ("ok", 1, []), ("ok", 1, []), ("ok", 1, []), ("ok", 1, [])]
    posts = {p.url: p for p in repo.list_posts()}
    assert len(posts) == 9 and len(source.downloads) == 9
    assert claim(posts[feed_items[0][2]]) == (first, PRECISION_SECOND, SOURCE_RSS_PUBDATE)
    assert claim(posts[feed_items[1][2]]) == (second, PRECISION_SECOND, SOURCE_RSS_PUBDATE)
    assert claim(posts[feed_items[2][2]]) == (datetime(2024, 3, 3, tzinfo=UTC), PRECISION_DAY, SOURCE_RSS_PUBDATE)
    assert claim(posts[site.url("/atom/a.mp4")]) == (
        datetime(2024, 3, 4, 9, 15, tzinfo=UTC), PRECISION_SECOND, SOURCE_ATOM_PUBLISHED)
    assert claim(posts[direct]) == (MODIFIED, PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED)
    assert claim(posts[og]) == (MODIFIED, PRECISION_SECOND, SOURCE_HTTP_LAST_MODIFIED)
    assert claim(posts[jsonld]) == (datetime(2024, 3, 7, tzinfo=UTC), PRECISION_DAY, SOURCE_JSONLD_UPLOAD_DATE)
    assert claim(posts[site.url("/tg/4521.mp4")]) == (
        datetime(2024, 3, 2, 12, 0, 1, tzinfo=UTC), PRECISION_SECOND, SOURCE_TELEGRAM_TIME)
    assert {p.watch_id for p in posts.values()} == {w.id for w in watches.values()}
    assert repo.count_media() == 2  # the same footage at several URLs is stored once
    assert_store_clean(ws)

    again = poll_all(ws, source=source)

    assert [(s.status, s.items_seen, s.items_new) for s in again] == [
        ("ok", 3, 0), ("ok", 2, 0), ("ok", 1, 0), ("ok", 1, 0), ("ok", 1, 0), ("ok", 1, 0)]
    assert len(source.downloads) == 9  # nothing downloaded again

    fourth = datetime(2024, 3, 4, 18, 0, tzinfo=UTC)
    site.rss("/feed.rss", [("Four", rfc822(fourth), site.file("/rss/4.mp4", tiny_clips["life"])), *feed_items])

    (later,) = poll_all(ws, [watches[rss].id], source=source)

    assert (later.items_seen, later.items_new) == (4, 1)
    assert source.downloads[9:] == [site.url("/rss/4.mp4")]
    assert claim(repo.get_post_by_archive_key(f"generic {site.url('/rss/4.mp4')}")) == (
        fourth, PRECISION_SECOND, SOURCE_RSS_PUBDATE)
    polls = repo.list_polls(watches[rss].id)
    assert [(p.status, p.items_seen, p.items_new, p.items_failed) for p in polls] == [
        ("ok", 4, 1, 0), ("ok", 3, 0, 0), ("ok", 3, 3, 0)]
    assert repo.get_watch(watches[rss].id).last_polled_at is not None


def test_failures_are_recorded_and_the_rest_is_stored(workspace, source, site, tiny_clips):
    ws, repo = workspace, workspace.repository
    data = tiny_clips["testsrc2"].read_bytes()
    good = site.file("/good.mp4", tiny_clips["mandelbrot"])
    missing = site.url("/missing.mp4")
    refused = site.server.refused_url("/refused.mp4")
    cut = site.server.add_cut_short(site.prefix + "/cut.mp4", data, "video/mp4", send=len(data) // 3)
    truncated = site.file("/truncated.mp4", data[: len(data) // 2])
    page = site.page("/about.html", "not_video.html", "text/html")
    day = rfc822(datetime(2024, 3, 1, tzinfo=UTC))
    feed = site.rss("/feed.rss", [(name, day, url) for name, url in [
        ("missing", missing), ("refused", refused), ("cut", cut), ("good", good), ("truncated", truncated),
        ("page", page)]])
    watch = repo.add_watch(feed, "rss")
    now = datetime.now(UTC)

    summary = poll_watch(ws, watch, source, now=now)

    assert (summary.status, summary.items_seen, summary.items_new, summary.items_failed) == ("partial", 6, 1, 5)
    errors = {e["url"]: e["error"] for e in summary.errors}
    assert {e["url"]: e["kind"] for e in summary.errors} == {missing: "http-404", refused: "refused", cut: "cut-short",
                                                           truncated: "corrupt", page: "not-a-video"}
    assert errors[missing] == f"HTTP 404 Not Found from {missing}"
    assert re.fullmatch(r"connection refused by 127\.0\.0\.1:\d+; is the server up\?", errors[refused])
    assert errors[cut].startswith("transfer cut short")
    assert errors[truncated].startswith(f"{truncated} did not give a playable video: ")
    assert errors[page].startswith(f"no video found at {page}")
    assert all("\n" not in e for e in errors.values())
    (record,) = repo.list_polls(watch.id)
    assert (record.status, record.items_failed, record.errors) == ("partial", 5, summary.errors)
    assert [p.url for p in repo.list_posts()] == [good]
    state = repo.get_watch_item(watch.id, f"generic {missing}")
    assert (state.status, state.attempts, state.last_error) == ("failed", 1, errors[missing])
    assert state.next_attempt_at == now + timedelta(seconds=60)
    assert_store_clean(ws)


def test_failed_item_waits_for_its_retry_time(workspace, source, site, tiny_clips):
    ws, repo = workspace, workspace.repository
    url = site.url("/later.mp4")  # 404 until the file is published
    watch = repo.add_watch(site.rss("/feed.rss", [("Later", rfc822(MODIFIED), url)]), "rss")
    now = datetime(2030, 1, 1, tzinfo=UTC)

    assert poll_watch(ws, watch, source, now=now).items_failed == 1
    assert poll_watch(ws, watch, source, now=now + timedelta(seconds=61)).items_failed == 1  # due: tried again
    state = repo.get_watch_item(watch.id, f"generic {url}")
    assert (state.attempts, state.next_attempt_at) == (2, now + timedelta(seconds=61 + 120))  # backoff doubled
    site.file("/later.mp4", tiny_clips["life"])

    early = poll_watch(ws, watch, source, now=now + timedelta(seconds=61 + 119))

    assert (early.items_new, early.items_failed, early.items_waiting) == (0, 0, 1)
    assert len(source.downloads) == 2

    due = poll_watch(ws, watch, source, now=now + timedelta(seconds=61 + 120))

    assert (due.status, due.items_new, due.items_waiting) == ("ok", 1, 0)
    assert repo.get_watch_item(watch.id, f"generic {url}").status == "stored"


def test_retry_delay_doubles_up_to_the_cap():
    settings = {"retry_base_seconds": 300, "retry_max_seconds": 3000}
    assert [retry_delay(settings, n).total_seconds() for n in range(1, 6)] == [300, 600, 1200, 2400, 3000]


def test_listing_failure_fails_the_poll(workspace, source, site):
    watch = workspace.repository.add_watch(site.url("/gone.rss"), "rss")

    summary = poll_watch(workspace, watch, source)

    assert (summary.status, summary.ran, summary.items_seen) == ("failed", False, 0)
    (record,) = workspace.repository.list_polls(watch.id)
    assert record.status == "failed"
    assert record.errors == [{"archive_key": None, "url": watch.url, "kind": "http-404",
                              "error": f"HTTP 404 Not Found from {watch.url}"}]


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}_info.json").read_text())


@dataclass
class RecordedPlatformSource:
    """A network double: lists platform posts and 'downloads' a real local clip with a recorded info dict."""

    items: list[tuple[ListedItem, dict, Path]]

    def __post_init__(self) -> None:
        self.downloads = 0

    def list_items(self, url, kind=None):
        return [item for item, _, _ in self.items]

    def download(self, item, workdir):
        self.downloads += 1
        info, clip = next((info, clip) for listed, info, clip in self.items if listed == item)
        workdir.mkdir(parents=True, exist_ok=True)
        path = Path(shutil.copy(clip, workdir / "media.mp4"))
        return DownloadedItem(path=path, info=info, post=post_metadata(info, item))


def test_platform_info_dicts_keep_their_fields(workspace, tiny_clips):
    repo = workspace.repository
    tiktok, youtube, telegram = recorded("tiktok"), recorded("youtube"), recorded("telegram")
    source = RecordedPlatformSource([
        (ListedItem(url=tiktok["webpage_url"], archive_key="tiktok 7301234567890123456"), tiktok,
         tiny_clips["testsrc2"]),
        # a listing that cannot know the key: it comes from the download
        (ListedItem(url=youtube["original_url"], archive_key=None), youtube, tiny_clips["testsrc2"]),
        (ListedItem(url="https://t.me/examplechannel/4521", archive_key="telegramembed examplechannel/4521",
                    extra={"views": "12.4K", "author": "Example Channel",
                           "forwarded_from": "https://t.me/origin_channel/77"}), telegram, tiny_clips["mandelbrot"]),
    ])
    watch = repo.add_watch("https://www.youtube.com/@citycouncil/videos", "listing")

    summary = poll_watch(workspace, watch, source)

    assert (summary.status, summary.items_new) == ("ok", 3)
    tk = repo.get_post_by_archive_key("tiktok 7301234567890123456")
    assert (tk.platform, tk.uploader, tk.uploader_id, tk.channel, tk.view_count) == (
        "tiktok", "newsdesk.example", "6745191554350760966", "Newsdesk Example", 184200)
    assert claim(tk) == (datetime(2023, 11, 15, 9, 10, 10, tzinfo=UTC), PRECISION_SECOND, SOURCE_YTDLP_TIMESTAMP)
    yt = repo.get_post_by_archive_key("youtube dQw4w9WgXcQ")
    assert (yt.platform, yt.url, yt.uploader_id, yt.watch_id) == (
        "youtube", "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "@citycouncil", watch.id)
    assert claim(yt) == (datetime(2024, 3, 2, tzinfo=UTC), PRECISION_DAY, SOURCE_YTDLP_UPLOAD_DATE)
    tg = repo.get_post_by_archive_key("telegramembed examplechannel/4521")
    assert (tg.platform, tg.channel, tg.view_count, tg.original_url) == (
        "telegram", "Example Channel", 12400, "https://t.me/origin_channel/77")
    assert tg.raw_metadata["yt_dlp"]["extractor_key"] == telegram["extractor_key"]

    again = poll_watch(workspace, watch, source)

    assert (again.items_seen, again.items_new, source.downloads) == (3, 0, 3)


def test_the_default_source_takes_the_config_defaults(tmp_path):
    assert isinstance(default_source(load_config(None, tmp_path)), YtDlpSource)
