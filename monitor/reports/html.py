"""The HTML report (templates/report.html.j2): one self-contained page of evidence.

No network and no script: images are embedded as data URIs, figures are
inline SVG, and a Content-Security-Policy meta tag forbids scripts, frames,
fonts and every fetch, so even text a template failed to escape could not
run.  Stored fields are autoescaped; only http(s) URLs become links.  The
matched frames are cut by `monitor.reports.frames`, many per ffmpeg process.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.reports.figures import coverage, graph, timeline
from monitor.reports.frames import THUMB_BOX, Frame, cut_frames
from monitor.reports.lineage import lineage, unmatched_ranges
from monitor.reports.templating import html_env
from monitor.reports.words import claim_text, flags_text, iso, match_text, seconds, when, where_text
from storage import MediaStore

FRAMES_PER_APPEARANCE = 4
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class Pair:
    """One matched moment shown side by side: the query's frame and the stored one."""

    query: Frame
    stored: Frame
    distance: int
    mirrored: bool  # the stored frame is shown flipped, to line up with the query


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


def _within(at: float, duration: float | None) -> float:
    """A time inside the video: a matched time can lie on or past the last frame's start."""
    return min(at, max(0.0, duration - 0.05)) if duration else at


def pairs_shown(report: EarliestReport, a: Appearance, stored_path: Path) -> list[Pair]:
    if a.match is None:
        middle = (a.media.duration or report.query_duration) / 2
        return [Pair(Frame.of(report.query_file, middle), Frame.of(stored_path, middle), 0, False)]
    return [Pair(Frame.of(report.query_file, _within(p.query_time, report.query_duration)),
                 Frame.of(stored_path, _within(p.stored_time, a.media.duration)), p.distance, a.match.mirrored)
            for p in _spread(a.match.pairs, FRAMES_PER_APPEARANCE)]


def render_html(report: EarliestReport, store: MediaStore) -> str:
    pairs = [pairs_shown(report, a, store.path(a.media.store_path)) for a in report.appearances]
    cut = cut_frames([f for shown in pairs for p in shown for f in (p.query, p.stored)])
    images = {f: "data:image/jpeg;base64," + base64.b64encode(data).decode() for f, data in cut.items()}
    lines = lineage(report)
    unmatched = unmatched_ranges(report)
    number = {a.post.id: n for n, a in enumerate(report.appearances, 1)}
    return html_env().get_template("report.html.j2").render(
        report=report, pairs=pairs, images=images, query_file_present=report.query_file.is_file(),
        lineage=lines, unmatched=unmatched, timeline=timeline(report), coverage=coverage(report, unmatched),
        graph=graph(report, lines), number=number, csp=Markup(CSP), box=THUMB_BOX,
        claim_text=claim_text, flags_text=flags_text, iso=iso, match_text=match_text, seconds=seconds, when=when,
        where_text=where_text)
