"""What URL a watch stores, and when two watch URLs are the same watch.

People paste URLs in many spellings of one address: `HTTPS://Example.org/`
and `https://www.example.org`, a share link with `?utm_source=...`, a
Telegram channel as `t.me/NAME` or `t.me/s/NAME`.  Two watches of one
address poll it twice and store every post under both, so `watch add`
compares a *key* of the new URL with the keys of the stored watches.

The key lower-cases the scheme and host, treats http and https alike, drops
`www.` and `m.`, a default port, trailing slashes, the fragment and the
query parameters that only track who shared a link (`TRACKING`), and sorts
the parameters that are left.  The path keeps its case (many sites' paths
are case-sensitive), except a Telegram channel's name, which Telegram itself
reads in any case.

A Telegram channel given as `t.me/NAME` is stored as its public web preview
`https://t.me/s/NAME`, the page a poll reads; `t.me/NAME/123` stays a post.
"""

from __future__ import annotations

import re
import urllib.parse

from monitor.sources.telegram import TELEGRAM_HOSTS

# query parameters that say who shared or clicked a link, never which page it is
TRACKING = frozenset({"fbclid", "gclid", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "igshid", "igsh",
                      "mc_cid", "mc_eid", "_hsenc", "_hsmi", "si", "feature", "ref_src", "ref_url", "_ga"})
TRACKING_PREFIXES = ("utm_",)

# t.me paths that are not channels (invitations, sticker sets, share links...)
_TELEGRAM_NOT_CHANNELS = frozenset({"s", "c", "joinchat", "addstickers", "addemoji", "addlist", "addtheme", "share",
                                    "proxy", "socks", "login", "setlanguage", "invoice", "confirmphone", "contact",
                                    "boost", "iv", "bg", "msg", "dl"})
_TELEGRAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{2,31}")
_HOST_FIRST = re.compile(r"^([A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}|\d{1,3}(\.\d{1,3}){3}|localhost)(:\d+)?(/|$)")


def watch_url(text: str) -> str:
    """The URL to store for what a person typed: trimmed, https:// added to a bare host name (http:// to
    an IP address), t.me/NAME → t.me/s/NAME."""
    url = text.strip()
    if m := _HOST_FIRST.match(url):  # "example.org/feed.rss", "t.me/name": no scheme typed
        url = ("http://" if m[2] or m[1] == "localhost" else "https://") + url  # an address: a local server
    return channel_preview(url)


def channel_preview(url: str) -> str:
    """The public preview page `https://t.me/s/NAME` of a channel URL; other URLs unchanged."""
    name = telegram_channel(url)
    return f"https://t.me/s/{name}" if name else url


def telegram_channel(url: str) -> str | None:
    """NAME when `url` is a public channel, `t.me/NAME` or `t.me/s/NAME` (telegram.me too); else None."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or host.removeprefix("www.") not in TELEGRAM_HOSTS:
        return None
    path = [p for p in parts.path.split("/") if p]
    if len(path) == 2 and path[0] == "s":
        path = path[1:]
    if len(path) == 1 and path[0].lower() not in _TELEGRAM_NOT_CHANNELS and _TELEGRAM_NAME.fullmatch(path[0]):
        return path[0]
    return None


def same_watch_key(url: str) -> str:
    """A key equal for spellings of one address (see the module doc); the URL itself when it does not parse."""
    url = url.strip()
    if name := telegram_channel(url):
        return f"t.me/s/{name.lower()}"
    try:
        parts = urllib.parse.urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url
    if not host or parts.scheme.lower() not in ("http", "https"):
        return url
    for prefix in ("www.", "m."):
        host = host.removeprefix(prefix)
    if host in TELEGRAM_HOSTS:
        host = "t.me"
    default_port = {"http": 80, "https": 443}[parts.scheme.lower()]
    netloc = host if port in (None, default_port) else f"{host}:{port}"
    path = re.sub(r"/{2,}", "/", parts.path).rstrip("/")
    query = sorted((key, value) for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
                   if key.lower() not in TRACKING and not key.lower().startswith(TRACKING_PREFIXES))
    return netloc + path + ("?" + urllib.parse.urlencode(query) if query else "")
