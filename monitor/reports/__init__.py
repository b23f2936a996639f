"""find-earliest reports: JSON for scripts, a table for people, Markdown, and a self-contained HTML page.

`render_report(fmt, report, store)` is the one entry point jobs, the CLI and
`provenance serve` use; the formats live in `monitor.reports.render`.
"""

from __future__ import annotations

import os

from rich.console import Console

from monitor.reports.render import (FORMATS, appearance_json, detected_edits, match_json, render_html, render_json,
                                    render_markdown, render_text, report_json)

__all__ = ["FORMATS", "appearance_json", "detected_edits", "match_json", "render_html", "render_json",
           "render_markdown", "render_report", "render_text", "report_json"]

TEXT_WIDTH = 140  # columns of a text report written to a file or a socket


def render_report(fmt: str, report, store) -> str:
    """The report in `fmt` as a string (text without colours)."""
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    if fmt == "html":
        return render_html(report, store)
    with open(os.devnull, "w") as sink:
        console = Console(record=True, width=TEXT_WIDTH, file=sink)
        render_text(report, console)
        return console.export_text()
