"""Public Telegram channels, listed from their t.me/s/NAME web preview.

yt-dlp can download one Telegram post (`https://t.me/NAME/123`, its
TelegramEmbed extractor) but cannot list a channel.  The web preview lists the
latest ~20 posts as `div.tgme_widget_message[data-post="NAME/123"]`, each with
a `<time datetime=...>` and, for videos, a `tgme_widget_message_video_player`
holding `<video src=...>`.  We list the video posts from that markup.

Hand-off rule: on t.me itself each item's URL is the post URL, so yt-dlp
fetches a fresh, unexpired CDN link at download time.  A copy of the markup
served from anywhere else (an archived page, the tests' 127.0.0.1 server) has
no post pages yt-dlp understands, so its items point at the `<video src>`
instead.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser

from monitor.sources.base import SOURCE_TELEGRAM_TIME, ListedItem
from monitor.sources.feeds import claim_at, parse_iso

TELEGRAM_HOSTS = ("t.me", "telegram.me")
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class TelegramPost:
    post: str  # data-post, "NAME/123"
    datetime: str | None = None
    text: str = ""
    author: str | None = None
    views: str | None = None
    duration: str | None = None
    has_video: bool = False
    video_urls: list[str] = field(default_factory=list)
    forwarded_from: str | None = None  # the original post's URL when this one is forwarded

    @property
    def post_url(self) -> str:
        return f"https://t.me/{self.post}"


def parse_channel_page(html: str) -> list[TelegramPost]:
    """Every post on a t.me/s/ page, in page order (oldest first)."""
    parser = _ChannelPageParser()
    parser.feed(html)
    parser.close()
    return parser.posts


def list_channel_page(html: str, page_url: str) -> list[ListedItem]:
    """The video posts of a channel page as items (see the module's hand-off rule)."""
    on_telegram = urllib.parse.urlsplit(page_url).hostname in TELEGRAM_HOSTS
    items = []
    for post in parse_channel_page(html):
        if not post.has_video:
            continue
        if on_telegram:
            url = post.post_url
        elif post.video_urls:
            url = urllib.parse.urljoin(page_url, post.video_urls[0])
        else:
            continue
        at = parse_iso(post.datetime) if post.datetime else None
        items.append(
            ListedItem(
                url=url,
                archive_key=None,
                title=post.text.split("\n", 1)[0][:200] or None,
                claimed=claim_at(at, has_time=True, source=SOURCE_TELEGRAM_TIME) if at else None,
                extra={
                    "channel_page": page_url,
                    "post": post.post,
                    "post_url": post.post_url,
                    "datetime": post.datetime,
                    "text": post.text,
                    "author": post.author,
                    "views": post.views,
                    "duration": post.duration,
                    "video_urls": post.video_urls,
                    "forwarded_from": post.forwarded_from,
                },
            )
        )
    return items


class _ChannelPageParser(HTMLParser):
    """Collects posts by following the element stack; tolerant of unknown markup."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.posts: list[TelegramPost] = []
        self._stack: list[tuple[str, set[str]]] = []
        self._post: TelegramPost | None = None
        self._post_depth = 0
        self._capture: str | None = None  # which field text currently goes to
        self._capture_depth = 0
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        if tag == "br" and self._capture == "text":
            self._buffer.append("\n")
        if tag in _VOID:
            return
        self._stack.append((tag, classes))
        if "tgme_widget_message" in classes and a.get("data-post"):
            self._post = TelegramPost(post=a["data-post"])
            self._post_depth = len(self._stack)
            self.posts.append(self._post)
            return
        post = self._post
        if post is None:
            return
        if "tgme_widget_message_video_player" in classes:
            post.has_video = True
        elif tag == "video" and a.get("src"):
            post.has_video = True
            post.video_urls.append(a["src"])
        elif "tgme_widget_message_forwarded_from_name" in classes and a.get("href"):
            post.forwarded_from = a["href"]
        elif tag == "time" and a.get("datetime") and post.datetime is None:
            post.datetime = a["datetime"]
        field_name = (
            "text" if "tgme_widget_message_text" in classes
            else "author" if "tgme_widget_message_owner_name" in classes
            else "views" if "tgme_widget_message_views" in classes
            else "duration" if "message_video_duration" in classes
            else None
        )
        if field_name and self._capture is None:
            self._capture, self._capture_depth, self._buffer = field_name, len(self._stack), []

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        # pop up to the matching open tag; stray end tags are ignored
        for depth in range(len(self._stack), 0, -1):
            if self._stack[depth - 1][0] == tag:
                break
        else:
            return
        if self._capture and depth <= self._capture_depth:
            value = "".join(self._buffer).strip()
            if self._post is not None:
                setattr(self._post, self._capture, value if self._capture == "text" else value or None)
            self._capture = None
        if self._post is not None and depth <= self._post_depth:
            self._post = None
        del self._stack[depth - 1 :]

    def handle_data(self, data: str) -> None:
        if self._capture:
            self._buffer.append(data)
