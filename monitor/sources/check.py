"""One quick look at a URL before it becomes a watch: is there anything to poll?

`classify_watch_url` decides a watch's kind from the URL alone, so
`https://example.com/` became a "listing" that failed at every poll.  At
`watch add` time one bounded request (a short timeout, `[watch]
check_seconds`) reads what the URL serves, and the watch is refused, with
the reason, when it cannot be what it claims:

* a feed URL ("rss", "atom") must serve an RSS or Atom feed; an empty feed
  is accepted with a note (a new channel posts later);
* a Telegram channel must serve a public channel preview; one whose latest
  posts hold no video is accepted with a note;
* a page matched by no platform extractor ("listing") must serve a feed, a
  channel preview, a media file, or HTML with some sign of a video: a
  `<video>`, an og:video or twitter:player card, a JSON-LD VideoObject, an
  embedded player (`<iframe>`, `<embed>`, `<object>`), or a link to a media
  file.  A page with none of those (a home page, an article) is refused, and
  a feed it advertises is suggested instead.  The signs are generous on
  purpose: a page yt-dlp might read is never refused, only pages with no
  trace of a video;
* a direct media URL ("post") must answer (its headers only).

URLs a platform extractor accepts (a TikTok account, a YouTube channel) are
not fetched here: reading them needs yt-dlp and the platform, which take
seconds; their first poll says what is wrong.  A network failure is
reported as such (its kind from `monitor.sources.fetch`); `watch add
--no-check` adds without looking, e.g. while offline.
"""

from __future__ import annotations

import re
import urllib.parse

from monitor.sources.base import ListingFailed, NotAVideo
from monitor.sources.feeds import feed_kind, parse_feed
from monitor.sources.fetch import Fetcher
from monitor.sources.telegram import list_channel_page, parse_channel_page
from monitor.sources.watch_urls import channel_preview

_MEDIA_TYPES = ("video/", "audio/", "application/vnd.apple.mpegurl", "application/x-mpegurl",
                "application/dash+xml")
_PAGE_TYPES = ("text/html", "application/xhtml+xml", "")
_MEDIA_EXTENSIONS = rb"mp4|m4v|webm|mkv|mov|avi|flv|ogv|3gp|m3u8|mpd"
# every alternative matches a bounded length from where it starts: linear in the page, whatever it holds
_VIDEO_SIGNS = re.compile(
    rb"<(?:video|iframe|embed|object)[\s>]|og:video|twitter:player"
    rb"|[\"']@type[\"']\s{0,100}:\s{0,100}[\"']VideoObject"
    rb"|\.(?:" + _MEDIA_EXTENSIONS + rb")[\"'>\s?#]",
    re.IGNORECASE)
HEAD_BYTES = 256 * 1024  # where a page names its feeds (in <head>); a bound on the work for any page
_FEED_LINK = re.compile(rb"<link\b[^>]{0,2000}", re.IGNORECASE)  # matches do not overlap: linear
_ATTRIBUTE = re.compile(rb"""([\w:-]{1,100})\s{0,100}=\s{0,100}(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")


class NotAListing(NotAVideo):
    """The URL serves something that lists no videos: not a watch."""


def check_watch(url: str, kind: str, fetcher: Fetcher) -> str | None:
    """None, or a note, when `url` looks like a `kind` watch; raises NotAListing or the fetch's SourceError."""
    if kind == "post":
        fetcher.get(url, want_body=lambda headers: False)  # does it answer? (the body is the video itself)
        return None
    if kind in ("rss", "atom"):
        return _check_feed(url, fetcher.get(url).body)
    if kind == "telegram":
        return _check_channel(url, fetcher.get(channel_preview(url)).body)
    if kind != "listing":
        raise ValueError(f"unknown watch kind {kind!r}")
    page = fetcher.get(url, want_body=lambda headers: not _is_media(headers.get("Content-Type", "")))
    if _is_media(page.content_type):
        return f"{url} serves a single {page.content_type} file: each poll checks it again"
    if feed_kind(page.body[:4096]):
        return _check_feed(url, page.body)
    if b"tgme_widget_message" in page.body:
        return _check_channel(url, page.body)
    if page.content_type not in _PAGE_TYPES:
        raise NotAListing(f"{url} serves {page.content_type}, not a web page, feed or video; "
                          "give a page, feed or channel that lists videos")
    if _VIDEO_SIGNS.search(page.body):
        return None
    feeds = advertised_feeds(page.body, page.url)
    instead = f"; it advertises a feed, watch that instead: {feeds[0]}" if feeds else \
        "; give the page of a channel, playlist or feed that lists videos"
    raise NotAListing(f"{url} is a page without any video (no <video>, player, embed, video card or media "
                      f"link){instead}")


def advertised_feeds(html: bytes, page_url: str) -> list[str]:
    """The RSS or Atom feeds a page names in `<link rel="alternate">` (in its first HEAD_BYTES), absolute."""
    feeds = []
    for tag in _FEED_LINK.findall(html[:HEAD_BYTES]):
        attributes = {m[1].lower(): (m[2] or m[3] or m[4]) for m in _ATTRIBUTE.finditer(tag)}
        rel = attributes.get(b"rel", b"").lower().split()
        if b"alternate" in rel and attributes.get(b"type", b"").lower() in (b"application/rss+xml",
                                                                              b"application/atom+xml"):
            href = attributes.get(b"href", b"").decode("utf-8", "replace").strip()
            if href:
                feeds.append(urllib.parse.urljoin(page_url, href))
    return feeds


def _check_feed(url: str, body: bytes) -> str | None:
    if not feed_kind(body[:4096]):
        raise NotAListing(f"{url} is not an RSS or Atom feed; give the feed's own URL (a page's "
                          "<link rel=\"alternate\"> names it)")
    try:
        items = parse_feed(body, url)
    except ListingFailed as exc:
        raise NotAListing(str(exc), kind=exc.kind) from exc
    return None if items else f"the feed at {url} lists no items yet; they are picked up when it does"


def _check_channel(url: str, body: bytes) -> str | None:
    html = body.decode("utf-8", "replace")
    posts = parse_channel_page(html)
    if not posts:
        if "tgme_channel_info" in html:
            return f"the channel at {url} shows no posts yet"
        raise NotAListing(f"{url} shows no public channel: a private channel, a group, a person or a bot? "
                          "Only public channels can be watched")
    if not list_channel_page(html, url):
        return f"none of the latest {len(posts)} posts of {url} has a video; videos posted later are picked up"
    return None


def _is_media(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower().startswith(_MEDIA_TYPES)
