"""The Markdown report (templates/report.md.j2), for pasting into notes, tickets and wikis.

Every stored field is escaped (see `monitor.reports.templating`): no HTML
and no Markdown syntax from a title, uploader or URL survives, and only
http(s) URLs become links.
"""

from __future__ import annotations

from monitor.jobs.earliest import EarliestReport
from monitor.reports.lineage import lineage, unmatched_ranges
from monitor.reports.templating import markdown_env


def render_markdown(report: EarliestReport) -> str:
    number = {a.post.id: n for n, a in enumerate(report.appearances, 1)}
    return markdown_env().get_template("report.md.j2").render(
        report=report, lineage=lineage(report), unmatched=unmatched_ranges(report), number=number)
