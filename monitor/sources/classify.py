"""What kind of watch a URL is, decided offline at `watch add` time.

Rules, first match wins:

1. `t.me/s/NAME` (a public channel's web preview) → "telegram";
2. YouTube's `/feeds/videos.xml` → "atom" (yt-dlp rejects Atom);
3. a yt-dlp extractor other than Generic accepts the URL → "post" if that
   extractor only ever returns single videos (TikTok video, YouTube watch
   page), else "listing" (channels, users, playlists, and extractors that may
   return either);
4. anything that is not http(s) → `UnsupportedURL`: only the generic extractor
   matches it and the generic extractor only fetches over HTTP;
5. an http(s) URL whose path ends in a video extension → "post", in `.rss` →
   "rss", in `.atom` → "atom";
6. any other http(s) URL → "listing", decided by content at poll time:
   `YtDlpSource.list_items` fetches it once and reads an RSS or Atom feed, a
   Telegram channel page, a direct media file (by Content-Type) or, for any
   other HTML page, yt-dlp's generic extraction (og:video, JSON-LD, embeds).
"""

from __future__ import annotations

import functools
import posixpath
import urllib.parse

from monitor.sources.base import UnsupportedURL
from monitor.sources.telegram import channel_name


@functools.cache
def _extractors() -> tuple[type, ...]:
    from yt_dlp.extractor import gen_extractor_classes  # a slow import, only when a URL is classified

    return tuple(ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic")


@functools.lru_cache(maxsize=4096)
def extractor_for(url: str) -> type | None:
    """The first yt-dlp extractor class other than Generic that accepts `url`."""
    return next((ie for ie in _extractors() if ie.suitable(url)), None)


def classify_watch_url(url: str) -> str:
    """One of storage.records.WATCH_KINDS for `url`; raises UnsupportedURL (see module doc)."""
    url = url.strip()
    parts = urllib.parse.urlsplit(url)
    if channel_name(url):
        return "telegram"
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    if host == "youtube.com" and parts.path == "/feeds/videos.xml":
        return "atom"
    if ie := extractor_for(url):
        return "post" if ie.is_single_video(url) else "listing"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsupportedURL(
            f"cannot watch {url!r}: no yt-dlp extractor accepts it and it is not an http(s) URL; "
            "give a post, channel, feed or media URL starting with https://"
        )
    ext = posixpath.splitext(parts.path)[1].lower().lstrip(".")
    from yt_dlp.utils import MEDIA_EXTENSIONS

    if ext in MEDIA_EXTENSIONS.video:
        return "post"
    if ext in ("rss", "atom"):
        return ext
    return "listing"
