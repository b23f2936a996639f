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
from fingerprints.edits import KEPT_BELOW, kept_part
from monitor.display import shown
from monitor.jobs.earliest import Appearance

__all__ = ["appearance_edits", "claim_text", "clickable", "confidence", "confidence_text", "detected_edits", "iso",
           "match_text", "platform_claim_text", "seconds", "shown", "user_claim_lines", "when", "where_text"]

PADDED_BELOW = 0.95  # a picture filling less of its frame's width or height than this is padded
PADDED_MARGIN = 0.05  # ... and it must be this much less than the other video's
EXCERPT_COVERAGE = 0.9  # one side found at least this much in the other: an excerpt of it, or contains it
# Geometry words only beyond RANSAC's noise: on the chair set's 39 true pairs (no rotation, no zoom), the
# keypoint transforms read up to 7.1 degrees and 6.5 % of zoom or stretch.
ROTATED_FROM_DEGREES = 10.0  # a smaller rotation found by local features is not told as an edit
ZOOMED_FROM = 0.1  # a scale this far from 1 (either way) is a zoom; scales this far apart, a stretch
CONFIDENT_FRAMES, CONFIDENT_SPECIFIC, CONFIDENT_DISTANCE = 20, 0.6, 11.0  # "high": frames, pinned share, bits
PLAUSIBLE_FRAMES, PLAUSIBLE_SPECIFIC = 8, 0.4  # "medium"; less is "low"

# Most matched frame pairs matched best on these regions (`fingerprints.explain`): the edit, in words.
REGION_EDITS = {
    "cropped": "cropped (the stored video shows more around the picture)",
    "crop of query": "the stored video is a crop of this one",
    "centre": "framed differently at the edges (banners, badges, borders)",
    "window": "shown in a window: picture-in-picture, a screen recording's player or a split screen",
    "surround": "beside a window: the other side of a split screen, or under a large overlay or sticker",
    "moving parts": "a still camera: told apart from other takes by what moves in front of it",
    "in a window of the stored video": ("the stored video shows this one in a window: picture-in-picture, a screen "
                                        "recording's player or a split screen"),
    "under an overlay in the stored video": ("the stored video shows this one beside a window (the other side of a "
                                             "split screen) or under a large overlay"),
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


def _span(m: VideoMatch, side: str) -> str:
    start = min(getattr(s, f"{side}_start") for s in m.segments)
    end = max(getattr(s, f"{side}_end") for s in m.segments)
    return f"{start:.1f}–{end:.1f} s"


def _geometry(t: dict[str, float]) -> list[str]:
    """Rotation, zoom, stretch and the part kept, from the geometry local features found (`VideoMatch.transform`)."""
    words = []
    turn = -t.get("rotation", 0.0)  # the query relative to the stored video
    if abs(turn) >= ROTATED_FROM_DEGREES:
        words.append(f"rotated {abs(turn):.0f}° {'clockwise' if turn > 0 else 'counter-clockwise'}")
    sx, sy = t.get("scale_x"), t.get("scale_y")
    if sx and sy:
        zoom = 1.0 / math.sqrt(sx * sy)
        if abs(zoom - 1.0) >= ZOOMED_FROM:
            words.append(f"zoomed ×{zoom:.2f}")
        if abs(sy / sx - 1.0) >= ZOOMED_FROM:
            words.append(f"stretched: {sy / sx:.2f}× as wide for its height as the stored picture")
    part = [t.get(k) for k in ("stored_x", "stored_y", "stored_w", "stored_h")]
    if None not in part and min(part[2], part[3]) < KEPT_BELOW:
        words.append(f"cropped: {kept_part(*part)} of the stored picture")
    part = [t.get(k) for k in ("query_x", "query_y", "query_w", "query_h")]
    if None not in part and min(part[2], part[3]) < KEPT_BELOW:
        words.append(f"the stored video shows {kept_part(*part).replace(' kept', '')} of this picture")
    return words


def detected_edits(m: VideoMatch | None) -> list[str]:
    """The re-upload edits a match shows, in words, seen from the query's side (from the match alone: the
    colour frames' edits are `appearance_edits`)."""
    if m is None:
        return []
    edits = []
    if m.mirrored:
        edits.append("mirrored")
    if abs(m.speed - 1.0) > 0.02:
        edits.append(f"played at {m.speed:.2f}× ({'sped up' if m.speed > 1 else 'slowed down'})")
    if m.segments and m.query_coverage >= EXCERPT_COVERAGE > m.stored_coverage:
        edits.append(f"excerpt of the stored video ({_span(m, 'stored')} of it)")
    elif m.segments and m.stored_coverage >= EXCERPT_COVERAGE > m.query_coverage:
        edits.append(f"contains the stored video (at {_span(m, 'query')} of this one)")
    if len(m.segments) > 1:
        edits.append(f"re-cut: {len(m.segments)} segments")
    edits += _padding(m.framing)
    edits += _geometry(m.transform or {})
    total = sum(m.regions.values())
    for region, words in REGION_EDITS.items():
        if total and m.regions.get(region, 0) >= 0.5 * total:
            edits.append(words)
    return edits


def appearance_edits(a: Appearance) -> list[str]:
    """Every edit found for an appearance: the match's, then what its colour frames show (`Appearance.edits`).

    A specific statement replaces a vague one: where a crop sits replaces "cropped", the colour of the pads
    is added to the padding, a located window replaces "shown in a picture-in-picture window"."""
    edits = detected_edits(a.match)
    seen = a.edits
    if seen is None:
        return edits
    if seen.kept or any(e.startswith("cropped: ") for e in edits):
        edits = [e for e in edits if e != REGION_EDITS["cropped"]]
    if seen.window:
        edits = [e for e in edits if e != REGION_EDITS["window"]]
    if seen.pad:
        edits = [e.replace("(bars or a blurred pad around it)", f"({seen.pad} pads around it)") for e in edits]
    extra = seen.words()
    if any("pads around it" in e for e in edits):
        extra = [w for w in extra if not w.endswith("pads around the picture")]
    if any(e.startswith("cropped: ") for e in edits):
        extra = [w for w in extra if not w.startswith("cropped: ")]
    return edits + [w for w in extra if w not in edits]


def confidence(a: Appearance) -> tuple[str, str]:
    """(high, medium or low; why, in one line) for a match, from its evidence."""
    m = a.match
    if m is None:
        return "certain", "the same file, byte for byte"
    specific = m.specific_frames / m.matched_frames if m.matched_frames else 0.0
    routes = [r for r in (m.routes or ["frames"]) if r != "frames"]
    level = 0
    confident = m.mean_distance <= CONFIDENT_DISTANCE
    if m.matched_frames >= CONFIDENT_FRAMES and specific >= CONFIDENT_SPECIFIC and confident:
        level = 2
    elif m.matched_frames >= PLAUSIBLE_FRAMES and specific >= PLAUSIBLE_SPECIFIC:
        level = 1
    if routes and "frames" in (m.routes or []):
        level = min(2, level + 1)  # two independent routes found it
    why = (f"{m.matched_frames} frames matched in order, {m.specific_frames} of them only at this moment "
           f"({specific:.0%}), {m.mean_distance:.1f} bits apart on average")
    if m.motion_frames:
        why += f", {m.motion_frames} by what moves in front of a still camera"
    if routes:
        why += f"; also found by {', '.join(routes)}"
    return ("low", "medium", "high")[level], why


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
    edits = appearance_edits(a)
    found_by = "" if m.routes == ["frames"] else f"; found by {routes_text(m)}"  # frames alone: as ever
    return (f"{m.query_coverage:.0%} of query / {m.stored_coverage:.0%} of stored; {segments_text(m)}"
            + (f"; {', '.join(edits)}" if edits else "") + found_by)


def confidence_text(a: Appearance) -> str:
    level, why = confidence(a)
    return f"{level}: {why}"


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
