"""The report for people at a terminal: one block per appearance, earliest first.

A URL (or a hash) is evidence that people copy: it is printed whole on a line
of its own and never wrapped, folded or shortened, whatever the terminal's
width (the terminal may show a long one over two rows, but it stays one line
to copy).
Everything else wraps.  Stored fields are shown with control characters
escaped and are never read as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from monitor.jobs.earliest import EarliestReport
from monitor.reports.lineage import lineage, unmatched_ranges
from monitor.reports.observations import history_lines
from monitor.reports.words import (
    claim_text,
    confidence_text,
    flags_text,
    match_text,
    seconds,
    shown,
    user_claim_lines,
    when,
    where_text,
)

INDENT = "    "


def _whole_line(console: Console, text: str, indent: str = INDENT) -> None:
    """A URL or a hash: evidence people copy, so one line, never wrapped."""
    console.print(Text(indent + shown(text)), soft_wrap=True)


def _line(console: Console, text: str, indent: int = len(INDENT), style: str = "") -> None:
    """Text that may wrap, every row of it indented."""
    console.print(Padding(Text(text, style=style), (0, 0, 0, indent), expand=False))


def render_text(report: EarliestReport, console: Console) -> None:
    """The report on `console` (a terminal, or a recording console for a file)."""
    query = Text("Query ", style="bold")
    query.append(shown(report.query_name))
    query.append(f"  sha256 {report.query_sha256[:16]}…  {report.query_duration:.1f} s")
    console.print(query, soft_wrap=report.query_url is not None)
    if not report.appearances:
        console.print("No stored appearance of this footage.")
        return
    number = {a.post.id: n for n, a in enumerate(report.appearances, 1)}
    e = report.earliest
    head = Text("Earliest: ", style="bold green")
    head.append(f"#1 — {claim_text(e)}")
    if e.flags:
        head.append(f" ({flags_text(e, number)})", style="yellow")
    console.print(head)
    _whole_line(console, e.post.url, "  ")
    for n, a in enumerate(report.appearances, 1):
        console.print()
        line = Text(f"#{n}  ", style="bold")
        line.append(claim_text(a))
        line.append(f"  · first seen {when(a.post.first_seen_at) or 'unknown'}")
        console.print(line)
        _line(console, where_text(a))
        _whole_line(console, a.post.url)
        if a.post.title:
            _line(console, f"title: {shown(a.post.title)}")
        _line(console, f"match: {match_text(a)}")
        if a.match is not None:
            _line(console, f"confidence: {confidence_text(a)}")
        if a.flags:
            _line(console, f"flags: {flags_text(a, number)}", style="yellow")
        for line in user_claim_lines(a):
            _line(console, f"claimed by a person: {line}")
        for line in history_lines(a.post, a.observations):
            _line(console, f"revisits: {shown(line)}")
        _whole_line(console, f"sha256 {a.media.sha256}")
    console.print()
    console.print(Text("How it spread (most likely):", style="bold"))
    for sentence in lineage(report).sentences:
        _line(console, f"- {sentence}", indent=2)
    gaps = unmatched_ranges(report)
    if gaps:
        console.print(Text("Matched nowhere: " + ", ".join(f"query {seconds(a)}–{seconds(b)}" for a, b in gaps),
                           style="bold"))
    else:
        console.print("Every part of the query is matched somewhere.")
