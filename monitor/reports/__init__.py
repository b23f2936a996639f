"""find-earliest reports: JSON for scripts, text for people, Markdown, and a self-contained HTML page.

`render_report(fmt, report, store)` is the one entry point jobs, the CLI and
`provenance serve` use.  Each format is a module (`json`, `text`,
`markdown`, `html`); Markdown and HTML are Jinja2 templates in `templates/`.
The formats share their words (`words`), the reading of how the footage
spread (`lineage`), and the HTML figures' geometry (`figures`).  Reports only
render the `EarliestReport` model; what they show is fetched by the job
(`monitor.jobs.earliest`), never by a report.
"""

from __future__ import annotations

import os

from rich.console import Console

from monitor.reports.html import render_html
from monitor.reports.json import appearance_json, match_json, render_json, report_json
from monitor.reports.markdown import render_markdown
from monitor.reports.text import render_text
from monitor.reports.words import detected_edits

__all__ = ["FORMATS", "appearance_json", "detected_edits", "match_json", "render_html", "render_json",
           "render_markdown", "render_report", "render_text", "report_json"]

FORMATS = ("text", "json", "markdown", "html")
TEXT_WIDTH = 140  # columns of a text report written to a file or a socket


def render_report(fmt: str, report, store, width: int = TEXT_WIDTH) -> str:
    """The report in `fmt` as a string (text without colours, laid out for `width` columns)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report, store)
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=width, file=sink)
        render_text(report, console)
        return "".join(line.rstrip() + "\n" for line in console.export_text().splitlines())
