"""RSS 2.0 and Atom feeds, parsed by us and handed item by item to yt-dlp.

yt-dlp rejects Atom (YouTube channel feeds are Atom), and for RSS it keeps only
a parsed `timestamp`, so a date-only pubDate becomes indistinguishable from
midnight; it also takes enclosure URLs verbatim, so relative ones fail.  One
small parser for both formats keeps each item's date claim with its real
precision.  Feeds come from strangers: any DOCTYPE (the door to entity
expansion, "billion laughs") is refused before xml.etree sees the bytes, and
control characters that XML forbids (an escape sequence pasted into a title)
are dropped instead of failing the whole feed; what remains of a title is
kept as it is (it is shown escaped, see `monitor.display`).
"""

from __future__ import annotations

import re
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from monitor.sources.base import ClaimedTime, ListedItem, ListingFailed
from storage.records import (
    PRECISION_DAY,
    PRECISION_SECOND,
    SOURCE_ATOM_PUBLISHED,
    SOURCE_RSS_PUBDATE,
)

ATOM = "{http://www.w3.org/2005/Atom}"
_HAS_TIME = re.compile(r"\d{1,2}:\d{2}")
_DANGEROUS = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # C0 controls XML 1.0 does not allow
_FORBIDDEN_REF = re.compile(rb"&#(x0*[0-9a-f]{1,2}|0*[0-9]{1,2});", re.IGNORECASE)


def feed_kind(head: bytes) -> str | None:
    """"rss" or "atom" when the document's first bytes open such a feed, else None."""
    start = re.sub(rb"^(\s|<\?[^>]*\?>|<!--.*?-->)*", b"", head.lstrip(b"\xef\xbb\xbf"), flags=re.S)
    if re.match(rb"<rss[\s>]", start):
        return "rss"
    if re.match(rb"<(\w+:)?feed[\s>]", start) and b"http://www.w3.org/2005/Atom" in head:
        return "atom"
    return None


def parse_feed(data: bytes, feed_url: str) -> list[ListedItem]:
    """The items of an RSS 2.0 or Atom document, oldest claims kept per item.

    Item URLs are absolute (relative ones are resolved against `feed_url`);
    `archive_key` is left None for the caller, which knows the extractors.
    """
    if _DANGEROUS.search(data):
        raise ListingFailed(f"feed {feed_url} declares a DOCTYPE or ENTITY; refusing to parse it "
                            "(entity expansion risk)", kind="bad-response")
    try:
        root = ET.fromstring(_without_forbidden_characters(data))
    except ET.ParseError as exc:
        raise ListingFailed(f"feed {feed_url} is not well-formed XML: {exc}", kind="bad-response") from exc
    if root.tag == "rss":
        return [item for node in root.iterfind("./channel/item") if (item := _rss_item(node, feed_url))]
    if root.tag == f"{ATOM}feed":
        return [item for node in root.iterfind(f"{ATOM}entry") if (item := _atom_entry(node, feed_url))]
    raise ListingFailed(f"{feed_url} is XML but neither RSS 2.0 nor Atom (root element <{root.tag}>)",
                        kind="bad-response")


def _without_forbidden_characters(data: bytes) -> bytes:
    """`data` without the C0 control characters XML 1.0 forbids, raw or as character references."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: its bytes are not characters
        return data

    def keep(ref: re.Match) -> bytes:
        text = ref[1].decode("ascii")
        code = int(text[1:], 16) if text[0] in "xX" else int(text)
        return b"" if code < 0x20 and code not in (0x09, 0x0A, 0x0D) else ref[0]

    return _FORBIDDEN_REF.sub(keep, _FORBIDDEN.sub(b"", data))


def rss_pubdate_claim(text: str | None) -> ClaimedTime | None:
    """RFC 822 pubDate (ISO 8601 tolerated); day precision when it carries no time of day."""
    text = (text or "").strip()
    if not text:
        return None
    has_time = bool(_HAS_TIME.search(text))
    try:
        at = parsedate_to_datetime(text) if has_time else _rfc822_day(text)
    except (TypeError, ValueError):
        at = parse_iso(text)
    if at is None:
        return None
    return claim_at(at, has_time=has_time, source=SOURCE_RSS_PUBDATE)


def _rfc822_day(text: str) -> datetime:
    """"Sun, 03 Mar 2024" (a pubDate without its required time of day)."""
    return datetime.strptime(text.split(",")[-1].strip(), "%d %b %Y")


def atom_date_claim(text: str | None) -> ClaimedTime | None:
    """RFC 3339 `<published>`; day precision if a feed gives only a date."""
    text = (text or "").strip()
    at = parse_iso(text) if text else None
    if at is None:
        return None
    return claim_at(at, has_time="T" in text or " " in text, source=SOURCE_ATOM_PUBLISHED)


def _rss_item(node: ET.Element, feed_url: str) -> ListedItem | None:
    enclosure = node.find("enclosure")
    href = (enclosure.get("url") if enclosure is not None else None) or _text(node, "link")
    if not href:
        return None
    pubdate = _text(node, "pubDate")
    return ListedItem(
        url=_absolute(feed_url, href),
        archive_key=None,
        title=_text(node, "title"),
        claimed=rss_pubdate_claim(pubdate),
        extra={
            "feed_url": feed_url,
            "feed_format": "rss",
            "guid": _text(node, "guid"),
            "link": _text(node, "link"),
            "description": _text(node, "description"),
            "pubDate": pubdate,
            "enclosure_type": enclosure.get("type") if enclosure is not None else None,
        },
    )


def _atom_entry(node: ET.Element, feed_url: str) -> ListedItem | None:
    links = {link.get("rel", "alternate"): link.get("href") for link in node.iterfind(f"{ATOM}link")}
    href = links.get("enclosure") or links.get("alternate")
    if not href:
        return None
    published = _text(node, f"{ATOM}published")
    return ListedItem(
        url=_absolute(feed_url, href),
        archive_key=None,
        title=_text(node, f"{ATOM}title"),
        claimed=atom_date_claim(published),
        extra={
            "feed_url": feed_url,
            "feed_format": "atom",
            "id": _text(node, f"{ATOM}id"),
            "published": published,
            "updated": _text(node, f"{ATOM}updated"),
            "author": _text(node, f"{ATOM}author/{ATOM}name"),
        },
    )


def _absolute(feed_url: str, href: str) -> str:
    """`href` resolved against the feed's URL; as it is when it cannot be ("http://[broken": refused at download)."""
    try:
        return urllib.parse.urljoin(feed_url, href.strip())
    except ValueError:
        return href.strip()


def _text(node: ET.Element, path: str) -> str | None:
    found = node.find(path)
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def parse_iso(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339 (a trailing Z included), or None."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def claim_at(at: datetime, *, has_time: bool, source: str) -> ClaimedTime:
    """A UTC claim; without a time of day it is that day's midnight UTC at day precision."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    at = at.astimezone(UTC)
    if not has_time:
        return ClaimedTime(datetime(at.year, at.month, at.day, tzinfo=UTC), PRECISION_DAY, source)
    return ClaimedTime(at, PRECISION_SECOND, source)
