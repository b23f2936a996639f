"""The HTML report (templates/report.html.j2): one self-contained page of evidence.

No network and no script: images are embedded as data URIs, figures are
inline SVG, and a Content-Security-Policy meta tag forbids scripts, frames,
fonts and every fetch, so even text a template failed to escape could not
run.  Stored fields are autoescaped; only http(s) URLs become links.  The
matched frames are cut by `monitor.reports.frames`, many per ffmpeg process,
and the pairs shown are chosen where they are cheap to cut (just after
keyframes), spread over the match.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

from markupsafe import Markup

from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.reports.figures import coverage, graph, timeline
from monitor.reports.frames import (
    THUMB_BOX,
    Frame,
    Keyframes,
    cut_frames,
    keyframes,
    since_keyframe,
)
from monitor.reports.lineage import lineage, unmatched_ranges
from monitor.reports.templating import html_env
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


def _spread(pairs: list, n: int, cost) -> list:
    """`n` pairs spread over the match: in each of n equal stretches, the cheapest to cut, then the middlemost."""
    if len(pairs) <= n:
        return pairs
    chosen = []
    for k in range(n):
        lo, hi = round(k * len(pairs) / n), round((k + 1) * len(pairs) / n)
        middle = (lo + hi - 1) / 2
        chosen.append(pairs[min(range(lo, hi), key=lambda i: (round(cost(pairs[i]), 2), abs(i - middle)))])
    return chosen


def _within(at: float, duration: float | None) -> float:
    """A time inside the video: a matched time can lie on or past the last frame's start."""
    return min(at, max(0.0, duration - 0.05)) if duration else at


def pairs_shown(report: EarliestReport, a: Appearance, stored_path: Path, keys: Keyframes) -> list[Pair]:
    """The matched moments shown for `a`: spread over the match, each just after keyframes where one is."""
    if a.match is None:
        middle = (a.media.duration or report.query_duration) / 2
        at = middle - since_keyframe(keys.get(stored_path), middle)  # the same file: any frame will do
        return [Pair(Frame.of(report.query_file, at), Frame.of(stored_path, at), 0, False)]
    q_keys, s_keys = keys.get(report.query_file), keys.get(stored_path)

    def cost(p) -> float:
        return since_keyframe(q_keys, p.query_time) + since_keyframe(s_keys, p.stored_time)

    pairs = sorted(a.match.pairs, key=lambda p: p.query_time)
    return [Pair(Frame.of(report.query_file, _within(p.query_time, report.query_duration)),
                 Frame.of(stored_path, _within(p.stored_time, a.media.duration)), p.distance, a.match.mirrored)
            for p in _spread(pairs, FRAMES_PER_APPEARANCE, cost)]


def render_html(report: EarliestReport, store: MediaStore) -> str:
    stored = [store.path(a.media.store_path) for a in report.appearances]
    keys = keyframes([report.query_file, *stored])
    pairs = [pairs_shown(report, a, path, keys) for a, path in zip(report.appearances, stored)]
    cut = cut_frames([f for shown in pairs for p in shown for f in (p.query, p.stored)], keys)
    images = {f: "data:image/jpeg;base64," + base64.b64encode(data).decode() for f, data in cut.items()}
    lines = lineage(report)
    unmatched = unmatched_ranges(report)
    number = {a.post.id: n for n, a in enumerate(report.appearances, 1)}
    return html_env().get_template("report.html.j2").render(
        report=report, pairs=pairs, images=images, query_file_present=report.query_file.is_file(),
        lineage=lines, unmatched=unmatched, timeline=timeline(report), coverage=coverage(report, unmatched),
        graph=graph(report, lines), number=number, csp=Markup(CSP), box=THUMB_BOX)
