"""Every failure the local server can produce is classified by what happened: a stable kind and one line.

The kinds come from exception types, statuses, errnos and byte counts, never
from yt-dlp's wording, so these tests pass with whatever yt-dlp is installed
(`make test` installs the newest).  Transfer failures run through both of
yt-dlp's HTTP back-ends: `requests` when it is installed, its own urllib
handler otherwise (a fresh install), which reads and unpacks differently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.failures import KINDS, availability, is_kind
from monitor.sources import ListedItem, ListingFailed, NotAVideo, SourceError, YtDlpSource

BASE = {"retries": 0, "socket_timeout": 5}
HANDLERS = {"default": BASE, "urllib": {**BASE, "compat_options": ["prefer-legacy-http-handler"]}}
UNRESOLVABLE = "http://feed.provenance-test.invalid"  # .invalid never resolves (RFC 6761)


@pytest.fixture(scope="module")
def clip(tiny_clips) -> bytes:
    return tiny_clips["testsrc2"].read_bytes()


@pytest.fixture(scope="module")
def source() -> YtDlpSource:
    return YtDlpSource(BASE)


def download_failure(source: YtDlpSource, url: str, workdir: Path) -> SourceError:
    with pytest.raises(SourceError) as caught:
        source.download(ListedItem(url=url, archive_key=None), workdir)
    error = caught.value
    assert "\n" not in str(error) and is_kind(error.kind)
    assert not workdir.exists() or not any(workdir.rglob("*"))  # nothing left behind
    return error


@pytest.mark.parametrize("status, reason", [(404, "Not Found"), (410, "Gone"), (403, "Forbidden"),
                                            (500, "Internal Server Error")])
def test_http_status(http_server, source, tmp_path, status, reason):
    url = http_server.add_status(f"/status/{status}.mp4", status)
    error = download_failure(source, url, tmp_path)
    assert (error.kind, str(error)) == (f"http-{status}", f"HTTP {status} {reason} from {url}")


@pytest.mark.parametrize("handler", HANDLERS)
def test_cut_transfer_gives_its_byte_counts(http_server, clip, tmp_path, handler):
    url = http_server.add_cut_short(f"/cut/{handler}.mp4", clip, "video/mp4", send=len(clip) // 3)
    error = download_failure(YtDlpSource(HANDLERS[handler]), url, tmp_path)
    assert error.kind == "cut-short"
    assert f"got {len(clip) // 3} of {len(clip)} bytes from {url}" in str(error)


@pytest.mark.parametrize("handler", HANDLERS)
def test_refused_port(http_server, tmp_path, handler):
    url = http_server.refused_url("/clip.mp4")
    error = download_failure(YtDlpSource(HANDLERS[handler]), url, tmp_path)
    assert error.kind == "refused" and str(error).startswith("connection refused by 127.0.0.1:")


def test_unresolvable_host(source, tmp_path):
    error = download_failure(source, f"{UNRESOLVABLE}/clip.mp4", tmp_path)
    assert error.kind == "dns" and "DNS lookup failed" in str(error)


def test_page_whose_video_host_does_not_resolve(http_server, source, tmp_path):
    """yt-dlp keeps only the text of the error it gave up on; what its request raised says DNS."""
    page = ('<html><head><meta property="og:video" content="{}/clip.mp4"><meta property="og:title" content="x">'
            "</head><body></body></html>").format(UNRESOLVABLE)
    url = http_server.add_file("/dns/page.html", page, "text/html")
    error = download_failure(source, url, tmp_path)
    assert error.kind == "dns", str(error)


def test_redirect_loop(hostile, source, tmp_path):
    error = download_failure(source, hostile.redirect_loop("/loop/clip.mp4"), tmp_path)
    assert error.kind == "redirect-loop"


def test_page_without_video(http_server, source, tmp_path):
    url = http_server.add_file("/novideo/about.html", "<html><body><p>Opening hours</p></body></html>", "text/html")
    error = download_failure(source, url, tmp_path)
    assert (error.kind, type(error)) == ("not-a-video", NotAVideo)
    assert str(error).startswith(f"no video found at {url}")


def test_not_an_http_url(source, tmp_path):
    error = download_failure(source, "javascript:alert(1)", tmp_path)
    assert error.kind == "unsupported"


@pytest.mark.parametrize("make_url, kind", [
    (lambda s, h: s.url("/listing/missing.rss"), "http-404"),
    (lambda s, h: s.refused_url("/feed.rss"), "refused"),
    (lambda s, h: f"{UNRESOLVABLE}/feed.rss", "dns"),
    (lambda s, h: h.redirect_loop("/listing/loop.rss"), "redirect-loop"),
])
def test_listing_failures_are_said_once(http_server, hostile, source, make_url, kind):
    url = make_url(http_server, hostile)
    with pytest.raises(ListingFailed) as caught:
        source.list_items(url, "rss")
    message = str(caught.value)
    assert caught.value.kind == kind
    assert not message.startswith("listing") and message.count(url.split("/")[2]) == 1, message


def test_every_kind_is_documented_and_says_what_it_means_for_a_post():
    assert all(is_kind(kind) for kind in KINDS) and is_kind("http-418") and not is_kind("http-4040")
    assert [availability(k) for k in ("http-404", "http-410", "private", "http-403", "geo-blocked", "dns",
                                      "too-slow", "http-503", "not-a-video", "unknown")] == [
        "removed", "removed", "private", "private", "geo-blocked", "unreachable", "unreachable", "unreachable",
        "failed", "failed"]


@pytest.mark.parametrize("gives_up", ["in its own words", "asking for a login"])
def test_an_extractor_that_gives_up_after_its_request_failed_names_the_network(monkeypatch, gives_up):
    """Offline, TikTok's user pages said "Unable to extract secondary user ID" (kind unavailable) or "private":
    the page request that failed on DNS is why, whatever the extractor concludes from the missing page."""
    from yt_dlp.downloader.common import FileDownloader
    from yt_dlp.extractor.common import InfoExtractor
    from yt_dlp.utils import ExtractorError

    from monitor.sources.ytdlp import _child_ydl, _Seen, explain, ytdlp_options

    for cls, name in ((InfoExtractor, "raise_login_required"), (FileDownloader, "report_retry")):
        monkeypatch.setattr(cls, name, getattr(cls, name))  # _child_ydl wraps them: undone after the test

    class GivesUpIE(InfoExtractor):
        _VALID_URL = r"https?://gives-up\.invalid/(?P<id>\w+)"

        def _real_extract(self, url):
            self._download_webpage(f"{UNRESOLVABLE}/user-page", "user", fatal=False)
            if gives_up == "asking for a login":
                self.raise_login_required("This account is private")
            raise ExtractorError("Unable to extract secondary user ID", expected=True)

    url = "https://gives-up.invalid/someone"
    seen = _Seen(lambda progress: None, None)
    with _child_ydl(ytdlp_options(BASE), seen) as ydl, pytest.raises(Exception) as caught:
        ydl.add_info_extractor(GivesUpIE())
        ydl.extract_info(url, download=False, ie_key="GivesUp")

    cls, kind, message = explain(caught.value, url, seen, BASE, ListingFailed)
    assert (cls, kind) == (ListingFailed, "dns"), message
    assert message == f"cannot resolve the host name in {url} (DNS lookup failed); check the URL and the network"
    assert (explain(caught.value, url, None, BASE, ListingFailed)[1]) == "unavailable"  # the words alone: believed
