"""Geometry of the HTML report's figures: the timeline, the query's coverage, the derivation graph.

The figures are inline SVG drawn by the template from these plain numbers,
so the page needs no script and prints as it shows.  Text that comes from
stored fields never reaches a figure: rows are labelled by number (#1, #2)
and the words live in the report's text beside them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.reports.lineage import QUERY, SHARES, Lineage, label
from monitor.reports.words import claim_text, seconds, when

WIDTH = 760
LEFT = 56  # room for the row labels
RIGHT = 16
ROW = 24
TOP = 34  # room for the first-sighting label
AXIS = 28  # room for the axis labels below the rows
MIN_BAR = 3.0  # a day-precision claim or a short segment is at least this wide

# Tick spacings for the timeline's axis, smallest first.
_STEPS = [timedelta(minutes=m) for m in (1, 5, 15, 30)] + [timedelta(hours=h) for h in (1, 3, 6, 12)] + \
         [timedelta(days=d) for d in (1, 2, 7, 14, 30, 91, 182, 365, 730, 1825)]


@dataclass(frozen=True)
class Mark:
    kind: str  # "claim", "day", "unclaimed", "first-seen", "observation"
    x: float
    y: float
    width: float = 0.0
    title: str = ""  # said in the SVG's <title>, for readers and assistive tools
    state: str = ""  # an observation's state


@dataclass
class Timeline:
    width: int
    height: int
    rows: list[tuple[float, str]] = field(default_factory=list)  # (y, "#n")
    marks: list[Mark] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    sighting: tuple[float, str] | None = None  # x and words of our first sighting of the footage
    axis_y: float = 0.0


def _times(a: Appearance) -> list[datetime]:
    found = [t for t in (a.claim_interval() or ()) if t] + [o.observed_at for o in a.observations]
    return found + ([a.post.first_seen_at] if a.post.first_seen_at else [])


def _tick_format(step: timedelta) -> str:
    return "%Y-%m-%d" if step >= timedelta(days=1) else "%m-%d %H:%M"


def timeline(report: EarliestReport) -> Timeline | None:
    """Every appearance by claimed time (a day claim as a day-wide bar), first sightings and revisits."""
    apps = report.appearances
    times = [t for a in apps for t in _times(a)]
    if not times:
        return None
    lo, hi = min(times), max(times)
    if hi - lo < timedelta(hours=2):
        lo, hi = lo - timedelta(hours=1), hi + timedelta(hours=1)
    pad = (hi - lo) * 0.03
    lo, hi = lo - pad, hi + pad
    span = (hi - lo).total_seconds()

    def x(t: datetime) -> float:
        return round(LEFT + (WIDTH - LEFT - RIGHT) * (t - lo).total_seconds() / span, 1)

    fig = Timeline(width=WIDTH, height=TOP + ROW * len(apps) + AXIS)
    for n, a in enumerate(apps, 1):
        y = TOP + ROW * (n - 1) + ROW / 2
        fig.rows.append((y, f"#{n}"))
        interval = a.claim_interval()
        if interval is None and a.post.first_seen_at:
            fig.marks.append(Mark("unclaimed", x(a.post.first_seen_at), y,
                                  title=f"#{n}: no claimed time; placed at first seen {when(a.post.first_seen_at)}"))
        elif interval and a.claim.precision == "day":
            start, end = x(interval[0]), x(interval[1])
            fig.marks.append(Mark("day", start, y, max(MIN_BAR, end - start), title=f"#{n}: {claim_text(a)}"))
        elif interval:
            fig.marks.append(Mark("claim", x(interval[0]), y, title=f"#{n}: {claim_text(a)}"))
        if a.post.first_seen_at and interval is not None:
            fig.marks.append(Mark("first-seen", x(a.post.first_seen_at), y,
                                  title=f"#{n}: first seen by us {when(a.post.first_seen_at)}"))
        for o in a.observations:
            fig.marks.append(Mark("observation", x(o.observed_at), y,
                                  title=f"#{n}: {o.status} at {when(o.observed_at)}", state=o.status))
    seen = [a.post.first_seen_at for a in apps if a.post.first_seen_at]
    if seen:
        fig.sighting = (x(min(seen)), f"our first sighting {when(min(seen))}")
    step = next((s for s in _STEPS if span / s.total_seconds() <= 6), _STEPS[-1])
    first = datetime.fromtimestamp((lo.timestamp() // step.total_seconds() + 1) * step.total_seconds(), lo.tzinfo)
    fig.axis_y = TOP + ROW * len(apps)
    t = first
    while t <= hi:
        fig.ticks.append((x(t), t.strftime(_tick_format(step))))
        t += step
    return fig


@dataclass
class Coverage:
    width: int
    height: int
    duration: float
    rows: list[tuple[float, str, list[tuple[float, float]]]] = field(default_factory=list)  # y, label, x-spans
    missing: list[tuple[float, float, str]] = field(default_factory=list)  # x, width, words
    ticks: list[tuple[float, str]] = field(default_factory=list)
    axis_y: float = 0.0


def coverage(report: EarliestReport, unmatched: list[tuple[float, float]]) -> Coverage | None:
    """Which seconds of the query each appearance holds, and the seconds none holds."""
    d = report.query_duration
    if d <= 0:
        return None
    scale = (WIDTH - LEFT - RIGHT) / d

    def bar(start: float, end: float) -> tuple[float, float]:
        return round(LEFT + start * scale, 1), round(max(MIN_BAR, (end - start) * scale), 1)

    fig = Coverage(width=WIDTH, height=TOP + ROW * (len(report.appearances) + 1) + AXIS, duration=d)
    fig.missing = [(*bar(a, b), f"matched nowhere: {seconds(a)}–{seconds(b)}") for a, b in unmatched]
    fig.rows.append((TOP + ROW / 2, "query", [bar(0.0, d)]))
    for n, a in enumerate(report.appearances, 1):
        spans = [(0.0, d)] if a.match is None else [(s.query_start, s.query_end) for s in a.match.segments]
        fig.rows.append((TOP + ROW * n + ROW / 2, f"#{n}", [bar(s, e) for s, e in spans]))
    fig.axis_y = TOP + ROW * (len(report.appearances) + 1)
    step = next(s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 1e9) if d / s <= 8)
    t = 0.0
    while t <= d + 1e-6:
        fig.ticks.append((round(LEFT + t * scale, 1), seconds(t)))
        t += step
    return fig


@dataclass(frozen=True)
class Arc:
    path: str  # SVG path data, from the parent's row to the child's
    kind: str  # IDENTICAL, DERIVED or SHARES
    certain: bool
    title: str


@dataclass
class Graph:
    width: int
    height: int
    nodes: list[tuple[float, str, str]] = field(default_factory=list)  # y, "#n", one line about it
    arcs: list[Arc] = field(default_factory=list)
    node_x: float = 0.0


GRAPH_LANE = 18  # horizontal room per lane of arcs
GRAPH_TEXT_CHARS = 96  # node text is cut here in the figure; the full words are in the list beside it


def graph(report: EarliestReport, lines: Lineage) -> Graph | None:
    """Appearances top to bottom in report order, the query last; an arc from each source to its copy."""
    apps = report.appearances
    if not apps:
        return None
    row_of = {n: n - 1 for n in range(1, len(apps) + 1)} | {QUERY: len(apps)}
    lanes: list[list[tuple[int, int]]] = []
    placed: list[tuple[int, object]] = []
    for link in sorted(lines.links, key=lambda k: abs(row_of[k.child] - row_of[k.parent])):
        lo, hi = sorted((row_of[link.child], row_of[link.parent]))
        lane = next((i for i, taken in enumerate(lanes) if all(hi <= a or lo >= b for a, b in taken)), len(lanes))
        if lane == len(lanes):
            lanes.append([])
        lanes[lane].append((lo, hi))
        placed.append((lane, link))
    node_x = 24 + GRAPH_LANE * (len(lanes) + 1)
    fig = Graph(width=WIDTH, height=TOP + ROW * (len(apps) + 1), node_x=node_x)

    def y(number: int) -> float:
        return TOP + ROW * row_of[number] + ROW / 2 - 8

    parent_of = {k.child: k for k in lines.links}
    for number in [*range(1, len(apps) + 1), QUERY]:
        link = parent_of.get(number)
        about = "no earlier source stored" if link is None else \
            f"{'⇠' if link.kind == SHARES else '←'} {label(link.parent)}: {', '.join(link.words)}"
        name = "query" if number == QUERY else f"#{number}"
        text = about if len(about) <= GRAPH_TEXT_CHARS else about[:GRAPH_TEXT_CHARS - 1] + "…"
        fig.nodes.append((y(number), name, text))
    for lane, link in placed:
        bend = node_x - 10 - GRAPH_LANE * (lane + 1)
        y0, y1, x0 = y(link.parent), y(link.child), node_x - 6
        fig.arcs.append(Arc(f"M {x0} {y0} C {bend} {y0}, {bend} {y1}, {x0} {y1}", link.kind, link.order_certain,
                            f"{label(link.child)} from {label(link.parent)}: {', '.join(link.words)}"))
    return fig

