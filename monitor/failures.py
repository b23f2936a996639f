"""Why an item failed: a stable *kind* to branch on, and one line for people.

yt-dlp's wording changes from release to release, and a poll that matched
words stopped recognising a cut-off transfer the day a message changed.  So a
failure is classified once, where it happens, by what happened (an exception
type, an HTTP status, an errno, byte counts, a limit we set), into a short
kind that is stored with the item (`polls.errors[].kind`) and never renamed;
the message beside it is for people and may change.  Later passes over stored
posts (is it still up? removed? private?) branch on `availability(kind)`.

This module imports nothing from the project, so that the probes, the
sources and the analysis can all raise these without importing each other.
"""

from __future__ import annotations

import re

HTTP_KIND = re.compile(r"http-(\d{3})")

# kind -> what it means; "http-NNN" (the status the server answered) is a kind too
KINDS: dict[str, str] = {
    "dns": "the host name does not resolve",
    "refused": "the server refused the connection (nothing listens on that port)",
    "timeout": "the server stopped sending for longer than socket_timeout",
    "too-slow": "the download did not finish within item_deadline_seconds",
    "network": "another network failure (connection reset, host unreachable)",
    "tls": "the TLS handshake or certificate check failed",
    "proxy": "the configured proxy failed",
    "redirect-loop": "more redirects than max_redirects, or a redirect to a non-http URL",
    "cut-short": "the transfer ended before the announced length",
    "bad-response": "the server's answer could not be read (bad encoding, broken compression)",
    "too-large": "more bytes than max_download_bytes / max_page_bytes (also unpacked), or more memory than allowed",
    "too-long": "longer than max_duration_seconds",
    "too-many-pixels": "a picture larger than max_pixels (width x height)",
    "too-many-frames": "more frames than max_frames",
    "decoder-limit": "decoding needed more CPU time or memory than decode_cpu_seconds / decode_memory_mb",
    "not-a-video": "no video there: an HTML page without one, a still image, audio only",
    "corrupt": "a video file that cannot be decoded (truncated, damaged)",
    "unreadable": "a local file that cannot be read",
    "private": "the platform wants a login (private, members only, age-gated)",
    "geo-blocked": "the platform does not show it in this country",
    "unavailable": "the platform says the post is unavailable (removed, not live yet...)",
    "unsupported": "no source can fetch this URL",
    "extractor-error": "yt-dlp could not read the platform's page (often fixed by updating yt-dlp)",
    "storage": "the database, the media store or the local disk failed",
    "unknown": "anything else; the message is yt-dlp's or the system's own",
}

# what a failure says about the post itself, for revisits
_AVAILABILITY = {
    "removed": ("http-404", "http-410"),
    "private": ("private", "http-401", "http-403"),
    "geo-blocked": ("geo-blocked", "http-451"),
    "unreachable": ("dns", "refused", "timeout", "too-slow", "network", "tls", "proxy", "cut-short",
                    "http-429"),
}


def http_kind(status: int) -> str:
    return f"http-{int(status)}"


def is_kind(kind: str) -> bool:
    return kind in KINDS or bool(HTTP_KIND.fullmatch(kind))


def availability(kind: str) -> str:
    """"removed", "private", "geo-blocked", "unreachable" (try again later) or "failed" (something else)."""
    for state, kinds in _AVAILABILITY.items():
        if kind in kinds:
            return state
    if (m := HTTP_KIND.fullmatch(kind)) and m[1].startswith("5"):
        return "unreachable"
    return "failed"


def one_line(text: str) -> str:
    return " ".join(str(text).split())


class Failure(Exception):
    """A classified failure: `kind` (stable, stored) and `str(error)` (one line for people)."""

    kind = "unknown"

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(one_line(message))
        if kind is not None:
            self.kind = kind


def kind_of(error: BaseException) -> str:
    return getattr(error, "kind", None) or "unknown"


class SourceError(Failure):
    """Listing or downloading failed; `str(error)` is a one-line explanation."""


class UnsupportedURL(SourceError):
    """No source can handle this URL."""

    kind = "unsupported"


class ListingFailed(SourceError):
    """A watch URL could not be fetched or read as a list of posts."""


class DownloadFailed(SourceError):
    """A post could not be downloaded (HTTP error, refused, cut short, too big...)."""


class NotAVideo(SourceError):
    """What was fetched is not a playable video (an HTML page, a still image, a truncated file...)."""

    kind = "not-a-video"


class LimitExceeded(SourceError):
    """A configured limit ([limits] in config.toml) was reached; `kind` says which."""
