"""The facts every report format shows, in words: claims, matches, edits, where a post was seen.

All formats (text, JSON, Markdown, HTML) say the same things in the same
words, so they come from here; each format module only lays them out and
escapes them for its medium.  Stored fields (titles, uploaders, URLs, watch
labels) are untrusted: `shown` makes them printable on one line, and
`clickable` decides whether a URL may become a link at all.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

from fingerprints.align import VideoMatch
from monitor.display import shown
from monitor.jobs.earliest import Appearance

__all__ = ["claim_text", "clickable", "detected_edits", "iso", "match_text", "platform_claim_text", "seconds", "shown",
           "user_claim_lines", "when", "where_text"]

PADDED_BELOW = 0.95  # a picture filling less of its frame's width or height than this is padded
PADDED_MARGIN = 0.05  # ... and it must be this much less than the other video's
EXCERPT_COVERAGE = 0.9  # one side found at least this much in the other: an excerpt of it, or contains it
# Geometry words only beyond RANSAC's noise: on the chair set's 39 true pairs (no rotation, no zoom), the
# keypoint transforms read up to 7.1 degrees and 6.5 % of zoom or stretch.
ROTATED_FROM_DEGREES = 10.0  # a smaller rotation found by local features is not told as an edit
ZOOMED_FROM = 0.1  # a scale this far from 1 (either way) is a zoom; scales this far apart, a stretch
CROPPED_BELOW = 0.85  # a picture showing less of the other's area than this is a crop of it

# Most matched frame pairs matched best on these regions (`fingerprints.explain`): the edit, in words.
REGION_EDITS = {
    "cropped": "cropped (the stored video shows more around the picture)",
    "crop of query": "the stored video is a crop of this one",
    "centre": "framed differently at the edges (banners, badges, borders)",
    "window": "shown in a picture-in-picture window",
    "surround": "under a large overlay or sticker",
    "moving parts": "a still camera: told apart from other takes by what moves in front of it",
    "in a window of the stored video": "the stored video shows this one in a picture-in-picture window",
    "under an overlay in the stored video": "the stored video shows this one under a large overlay",
}

# A URL people may follow from a report: http(s), a host, and nothing that could end or break out of a link.
_CLICKABLE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:@%_~]+(?:[/?#][A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*)?",
                        re.IGNORECASE)


def iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def seconds(value: float) -> str:
    minutes, secs = divmod(max(0.0, value), 60)
    return f"{int(minutes)}:{secs:04.1f}"


def clickable(url: str | None) -> bool:
    """Whether `url` may be a link: http or https, printable ASCII a browser cannot read as anything else."""
    return bool(url) and _CLICKABLE.fullmatch(url) is not None


def _padding(shares: dict[str, float]) -> list[str]:
    """Bars or a blurred pad around the picture, on either side of a match, in words."""
    words = []
    for side, other, text in (("query", "stored", "padded: the picture fills {} of the frame (bars or a "
                                                  "blurred pad around it)"),
                              ("stored", "query", "the stored video is padded: its picture fills {} of its frame")):
        w, h = shares.get(f"{side}_width", 1.0), shares.get(f"{side}_height", 1.0)
        ow, oh = shares.get(f"{other}_width", 1.0), shares.get(f"{other}_height", 1.0)
        if (w < PADDED_BELOW and w <= ow - PADDED_MARGIN) or (h < PADDED_BELOW and h <= oh - PADDED_MARGIN):
            words.append(text.format(f"{w:.0%} × {h:.0%}"))
    return words


def _geometry(transform: dict[str, float]) -> list[str]:
    """The rotation, zoom, stretch and crop a local-feature route found (`VideoMatch.transform`), in words."""
    words = []
    turn = -transform.get("rotation", 0.0)  # the query relative to the stored video
    if abs(turn) >= ROTATED_FROM_DEGREES:
        words.append(f"rotated {abs(turn):.0f}° {'clockwise' if turn > 0 else 'counter-clockwise'}")
    sx, sy = transform.get("scale_x"), transform.get("scale_y")
    if sx and sy:
        zoom = 1.0 / math.sqrt(sx * sy)
        if abs(zoom - 1.0) >= ZOOMED_FROM:
            words.append(f"zoomed ×{zoom:.2f}")
        if abs(sy / sx - 1.0) >= ZOOMED_FROM:
            words.append(f"stretched ×{sy / sx:.2f} horizontally")
    for side, text in (("stored", "shows {} of the stored picture"), ("query", "the stored video shows {} of this picture")):
        w, h = transform.get(f"{side}_w", 1.0), transform.get(f"{side}_h", 1.0)
        if w * h <= CROPPED_BELOW:
            words.append(text.format(f"{w:.0%} × {h:.0%}"))
    return words


def routes_text(m: VideoMatch) -> str:
    """Which signals found a match: `frames + keypoints`."""
    return " + ".join(m.routes)


def main_region(m: VideoMatch) -> str | None:
    """The region most matched frame pairs agree on (`fingerprints.explain`), when at least half do."""
    total = sum(m.regions.values())
    for region in REGION_EDITS:
        if total and m.regions.get(region, 0) >= 0.5 * total:
            return region
    return None


def detected_edits(m: VideoMatch | None) -> list[str]:
    """The re-upload edits a match shows, in words, seen from the query's side."""
    if m is None:
        return []
    edits = []
    if m.mirrored:
        edits.append("mirrored")
    if abs(m.speed - 1.0) > 0.02:
        edits.append(f"speed ×{m.speed:.2f}")
    if m.query_coverage >= EXCERPT_COVERAGE > m.stored_coverage:
        edits.append("excerpt of the stored video")
    elif m.stored_coverage >= EXCERPT_COVERAGE > m.query_coverage:
        edits.append("contains the stored video")
    if len(m.segments) > 1:
        edits.append(f"re-cut: {len(m.segments)} segments")
    edits += _padding(m.framing)
    edits += _geometry(m.transform)
    total = sum(m.regions.values())
    for region, words in REGION_EDITS.items():
        if total and m.regions.get(region, 0) >= 0.5 * total:
            edits.append(words)
    return edits


def _claimed(at: datetime, precision: str) -> str:
    return at.strftime("%Y-%m-%d") if precision == "day" else at.strftime("%Y-%m-%d %H:%M:%S UTC")


def platform_claim_text(a: Appearance) -> str:
    p = a.post
    if p.published_at is None:
        return "no claim"
    return f"{_claimed(p.published_at, p.published_precision)} ({p.published_precision}, {p.published_source})"


def claim_text(a: Appearance) -> str:
    """The claim the appearance is ordered by; a person's correction says so, with the platform's claim beside."""
    c = a.correction
    if c is None:
        return platform_claim_text(a)
    return (f"{_claimed(c.published_at, c.precision)} ({c.precision}, user correction by {shown(c.author)}; "
            f"platform: {platform_claim_text(a)})")


def user_claim_lines(a: Appearance) -> list[str]:
    """Every claim people gave for the post, oldest first, marked as theirs (and whether it orders the report)."""
    return [f"{'correction' if c.correction else 'user claim'} {_claimed(c.published_at, c.precision)} "
            f"({c.precision}) by {shown(c.author)} on {c.created_at:%Y-%m-%d %H:%M} UTC: {shown(c.reason)}"
            + ("" if c.correction else " (not used for the order: the platform's claim is)")
            for c in a.user_claims]


def segments_text(m: VideoMatch, limit: int = 3) -> str:
    segs = ", ".join(f"q {seconds(s.query_start)}–{seconds(s.query_end)} ↔ "
                     f"{seconds(s.stored_start)}–{seconds(s.stored_end)}" for s in m.segments[:limit])
    return segs + (f" (+{len(m.segments) - limit})" if len(m.segments) > limit else "")


def match_text(a: Appearance) -> str:
    if a.match is None:
        return "identical file"
    m = a.match
    edits = detected_edits(m)
    found_by = "" if m.routes == ["frames"] else f"; found by {routes_text(m)}"  # frames alone: as ever
    return (f"{m.query_coverage:.0%} of query / {m.stored_coverage:.0%} of stored; {segments_text(m)}"
            + (f"; {', '.join(edits)}" if edits else "") + found_by)


def where_text(a: Appearance) -> str:
    """Site, the label of the watch that found the post, uploader: `127.0.0.1 · Harbour Gazette · by desk`."""
    parts = [shown(a.post.platform or "?")]
    if a.watch is not None:
        parts.append(shown(a.watch.label) if a.watch.label else f"watch {a.watch.id}")
    parts.append(f"by {shown(a.post.uploader)}" if a.post.uploader else "uploader unknown")
    return " · ".join(parts)


def flags_text(a: Appearance, number: dict[int, int] | None = None) -> str:
    """The flags, and which appearances an ambiguous claim is ambiguous with (by number, else post id)."""
    text = ", ".join(a.flags)
    if a.ambiguous_with:
        others = [f"#{number[p]}" if number and p in number else f"post {p}" for p in a.ambiguous_with]
        text += f" (with {', '.join(others)})"
    return text
