"""The report for people at a terminal: one block per appearance, earliest first.

A URL is evidence that people copy: it is printed whole on a line of its own
and never wrapped, folded or shortened, whatever the terminal's width (the
terminal may show a long one over two rows, but it stays one line to copy).
Everything else wraps.  Stored fields are shown with control characters
escaped and are never read as markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from monitor.jobs.earliest import EarliestReport
from monitor.reports.lineage import lineage, unmatched_ranges
from monitor.reports.words import claim_text, flags_text, match_text, seconds, shown, when, where_text

INDENT = "    "


def _url_line(console: Console, url: str, indent: str = INDENT) -> None:
    console.print(Text(indent + shown(url)), soft_wrap=True)


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
    _url_line(console, e.post.url, "  ")
    for n, a in enumerate(report.appearances, 1):
        console.print()
        line = Text(f"#{n}  ", style="bold")
        line.append(claim_text(a))
        line.append(f"  · first seen {when(a.post.first_seen_at) or 'unknown'}")
        console.print(line)
        console.print(Text(INDENT + where_text(a)))
        _url_line(console, a.post.url)
        if a.post.title:
            console.print(Text(f"{INDENT}title: {shown(a.post.title)}"))
        console.print(Text(f"{INDENT}match: {match_text(a)}"))
        if a.flags:
            console.print(Text(f"{INDENT}flags: {flags_text(a, number)}", style="yellow"))
        for o in a.observations:
            detail = f" ({shown(o.detail)})" if o.detail else ""
            console.print(Text(f"{INDENT}revisited {when(o.at)}: {o.state}{detail}"))
        console.print(Text(f"{INDENT}sha256 {a.media.sha256}"))
    console.print()
    console.print(Text("How it spread (most likely):", style="bold"))
    for sentence in lineage(report).sentences:
        console.print(Text(f"  - {sentence}"))
    gaps = unmatched_ranges(report)
    if gaps:
        console.print(Text("Matched nowhere: " + ", ".join(f"query {seconds(a)}–{seconds(b)}" for a, b in gaps),
                           style="bold"))
    else:
        console.print("Every part of the query is matched somewhere.")
