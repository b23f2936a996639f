"""How the footage spread: which appearance most likely derives from which, and what of the query no one has.

A copy can only be made from something that existed before it and that
holds everything the copy shows.  So for each appearance, in the report's
order (earliest credible claim first), the candidates are the earlier
appearances it is linked to: the same file, or a stored match between the
two videos (computed when the later one was ingested).  A candidate that
lacks some of the copy's footage (a second or more of the copy is in no
matched segment: footage from elsewhere, or added by whoever made the copy)
or shows less of the picture (it is a crop of the copy, or holds it in a
window or under an overlay) cannot be the only source: the two *share*
footage.  Among the rest the most likely source is the one with the
fewest edits between them, then the one the copy covers most of (the
nearest superset: a trim of a trim comes from the first trim), then the
nearest frames.  The query is placed the same way against every appearance.

This is a reading of the evidence, said as such in every format: order by
claims can be wrong (the flags say when), and an unseen common source
explains many patterns as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from fingerprints.align import VideoMatch
from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.reports.words import EXCERPT_COVERAGE, detected_edits, main_region, seconds

QUERY = 0  # the query's number in a lineage; appearances are numbered from 1 in report order
UNMATCHED_MIN_SECONDS = 1.0  # shorter gaps between matched segments are frame sampling, not missing footage

IDENTICAL = "identical"  # the same file
DERIVED = "derived"  # could have been made from the parent alone
SHARES = "shares"  # related, but the parent cannot be the only source

# Regions (`fingerprints.explain`, seen from the copy) that say the candidate shows less of the picture.
_SHOWS_LESS = {"crop of query", "in a window of the stored video", "under an overlay in the stored video"}
_NOT_EDITS = ("excerpt of the stored video", "contains the stored video")


@dataclass(frozen=True)
class Link:
    child: int  # QUERY or an appearance's number
    parent: int  # an appearance's number
    kind: str  # IDENTICAL, DERIVED or SHARES
    words: tuple[str, ...]  # the relation, seen from the child ("mirrored", "excerpt of #1", ...)
    order_certain: bool  # False when the two claims cannot be ordered (same-day claim)


@dataclass
class Lineage:
    links: list[Link] = field(default_factory=list)
    sentences: list[str] = field(default_factory=list)  # the links and the roots, in words


def label(number: int) -> str:
    return "the query" if number == QUERY else f"#{number}"


def _gaps(spans: list[tuple[float, float]], duration: float) -> list[tuple[float, float]]:
    """The parts of [0, duration] no span covers, gaps shorter than UNMATCHED_MIN_SECONDS left out."""
    gaps, reached = [], 0.0
    for start, end in sorted(spans):
        if start - reached >= UNMATCHED_MIN_SECONDS:
            gaps.append((round(reached, 3), round(start, 3)))
        reached = max(reached, end)
    if duration - reached >= UNMATCHED_MIN_SECONDS:
        gaps.append((round(reached, 3), round(duration, 3)))
    return gaps


def unmatched_ranges(report: EarliestReport) -> list[tuple[float, float]]:
    """Time ranges of the query (seconds) that no appearance's matched segments cover."""
    spans = []
    for a in report.appearances:
        if a.match is None:
            spans.append((0.0, report.query_duration))
        else:
            spans += [(s.query_start, s.query_end) for s in a.match.segments]
    return _gaps(spans, report.query_duration)


def _words(edits: list[str], child: int, parent: int) -> list[str]:
    return [e.replace("the stored video", label(parent)).replace("this one", label(child)) for e in edits]


def _candidate(child: int, parent: int, m: VideoMatch | None, child_duration: float | None, certain: bool):
    """(score, link) for `child` made from `parent`, given the match seen from the child (None: same file)."""
    if m is None:
        return (2, -parent), Link(child, parent, IDENTICAL, ("the same file",), certain)
    edits = detected_edits(m)
    reasons = []
    gaps = _gaps([(s.query_start, s.query_end) for s in m.segments], child_duration) if child_duration else []
    if gaps or m.query_coverage < EXCERPT_COVERAGE:
        where = f" ({', '.join(f'{seconds(a)}–{seconds(b)}' for a, b in gaps[:3])})" if gaps else ""
        reasons.append(f"it shows footage {label(parent)} lacks{where}")
    if main_region(m) in _SHOWS_LESS:
        reasons.append(f"{label(parent)} shows less of the picture")
    kind = SHARES if reasons else DERIVED
    words = _words(edits, child, parent) + reasons
    changes = sum(1 for e in edits if not e.startswith(_NOT_EDITS))
    if reasons:  # the candidate explaining most of the child first
        score = (0, round(m.query_coverage, 2), -changes, m.stored_coverage, -m.mean_distance, -parent)
    else:  # the nearest superset with the fewest edits; among equals, the earliest
        score = (1, -changes, round(m.stored_coverage, 2), -m.mean_distance, -parent)
    return score, Link(child, parent, kind, tuple(words or ["same footage"]), certain)


def lineage(report: EarliestReport) -> Lineage:
    """The most likely source of each appearance and of the query, with the reasons, in words."""
    apps = report.appearances
    seen_from = {(r.media_id, r.match.media_id): r.match for r in report.relations}
    out = Lineage()
    for n, a in enumerate(apps, 1):
        best = None
        for p_number, p in enumerate(apps[:n - 1], 1):
            same = p.media.id == a.media.id
            if not same and (a.media.id, p.media.id) not in seen_from:
                continue
            candidate = _candidate(n, p_number, None if same else seen_from[(a.media.id, p.media.id)],
                                   a.media.duration, p.post.id not in a.ambiguous_with)
            best = max(best, candidate, key=lambda c: c[0]) if best else candidate
        if best is None:
            out.sentences.append(_root_sentence(n))
            continue
        out.links.append(best[1])
        out.sentences.append(_link_sentence(best[1], a, apps[best[1].parent - 1]))
    best = None
    for p_number, p in enumerate(apps, 1):
        candidate = _candidate(QUERY, p_number, p.match, report.query_duration, True)
        best = max(best, candidate, key=lambda c: c[0]) if best else candidate
    if best is not None:
        out.links.append(best[1])
        out.sentences.append(_link_sentence(best[1], None, apps[best[1].parent - 1]))
    return out


def _root_sentence(n: int) -> str:
    if n == 1:
        return "#1 is the earliest appearance: nothing stored comes before it."
    return (f"#{n} is linked to no earlier appearance by a stored match: it came from a source we do not "
            "hold, or its match was not stored.")


def _gap(child: Appearance | None, parent: Appearance) -> str:
    """How much later the child's claim is than the parent's, when both have one."""
    if child is None or any(a.claim is None or a.claim.precision == "day" for a in (child, parent)):
        return ""
    delta = child.claim.at - parent.claim.at
    if delta < timedelta(0):
        return ""
    hours = delta.total_seconds() / 3600
    if hours < 1:
        return f"; claimed {round(delta.total_seconds() / 60)} min later"
    if hours < 48:
        return f"; claimed {hours:.1f} h later"
    return f"; claimed {delta.days} days later"


def _link_sentence(link: Link, child: Appearance | None, parent: Appearance) -> str:
    who = "The query" if link.child == QUERY else label(link.child)
    words = ", ".join(link.words)
    if link.kind == SHARES:
        text = f"{who} shares footage with {label(link.parent)} but cannot derive from it alone: {words}"
    else:
        text = f"{who} most likely derives from {label(link.parent)}: {words}"
    text += _gap(child, parent)
    if not link.order_certain:
        text += "; which came first is not certain (a day-precision claim on the same day)"
    return text + "."
