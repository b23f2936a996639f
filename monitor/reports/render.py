"""Render find-earliest reports: JSON for scripts, a table for people, Markdown, and HTML.

The JSON shape is a contract other tools rely on (see docs/cli.md); the other
formats show the same facts.  The HTML report is one self-contained file: the
matched frames of the query and of each appearance are embedded side by side,
cut from the files with ffmpeg at the matched timestamps.
"""

from __future__ import annotations

import base64
import html
import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fingerprints.align import VideoMatch
from monitor.display import shown
from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.reports.observations import history_lines, observations_json
from storage import MediaStore

FORMATS = ("text", "json", "markdown", "html")
HTML_FRAMES_PER_APPEARANCE = 4


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""


def _seconds(value: float) -> str:
    minutes, seconds = divmod(max(0.0, value), 60)
    return f"{int(minutes)}:{seconds:04.1f}"


PADDED_BELOW = 0.95  # a picture filling less of its frame's width or height than this is padded
PADDED_MARGIN = 0.05  # ... and it must be this much less than the other video's


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


def detected_edits(m: VideoMatch | None) -> list[str]:
    """The re-upload edits a match shows, in words."""
    if m is None:
        return []
    edits = []
    if m.mirrored:
        edits.append("mirrored")
    if abs(m.speed - 1.0) > 0.02:
        edits.append(f"speed ×{m.speed:.2f}")
    if m.query_coverage >= 0.9 > m.stored_coverage:
        edits.append("excerpt of the stored video")
    elif m.stored_coverage >= 0.9 > m.query_coverage:
        edits.append("contains the stored video")
    if len(m.segments) > 1:
        edits.append(f"re-cut: {len(m.segments)} segments")
    edits += _padding(m.framing)
    total = sum(m.regions.values())
    for region, words in REGION_EDITS.items():
        if total and m.regions.get(region, 0) >= 0.5 * total:
            edits.append(words)
    return edits


# Most matched frame pairs matched best on these regions (`fingerprints.explain`): the edit, in words.
REGION_EDITS = {
    "cropped": "cropped (the stored video shows more around the picture)",
    "crop of query": "the stored video is a crop of this one",
    "centre": "framed differently at the edges (banners, badges, borders)",
    "window": "shown in a picture-in-picture window",
    "surround": "under a large overlay or sticker",
    "moving parts": "a still camera: told apart from other takes by what moves in front of it",
    "in a window of the stored video": "the stored video shows this one in a picture-in-picture window",
    "under an overlay in the stored video": "the stored video shows this one under a large overlay",
}


def match_json(match: VideoMatch | None, query_duration: float, stored_duration: float | None) -> dict[str, Any]:
    if match is None:
        end = round(query_duration, 3)
        return {"exact": True, "query_coverage": 1.0, "stored_coverage": 1.0, "mirrored": False, "speed": 1.0,
                "offset": 0.0, "segments": [{"query_start": 0.0, "query_end": end, "stored_start": 0.0,
                                             "stored_end": round(stored_duration or query_duration, 3)}],
                "matched_frames": None, "mean_distance": 0.0, "edits": [], "frames": []}
    return {
        "exact": False,
        "query_coverage": match.query_coverage,
        "stored_coverage": match.stored_coverage,
        "mirrored": match.mirrored,
        "speed": match.speed,
        "offset": match.offset,
        "segments": [{"query_start": s.query_start, "query_end": s.query_end,
                      "stored_start": s.stored_start, "stored_end": s.stored_end} for s in match.segments],
        "matched_frames": match.matched_frames,
        "mean_distance": match.mean_distance,
        "specific_frames": match.specific_frames,
        "motion_frames": match.motion_frames,
        "flat_frames": match.flat_frames,
        "framing": match.framing,
        "regions": match.regions,
        "edits": detected_edits(match),
        "frames": [{"query_time": p.query_time, "stored_time": p.stored_time, "distance": p.distance}
                   for p in match.pairs],
    }


def appearance_json(a: Appearance, query_duration: float) -> dict[str, Any]:
    p = a.post
    return {
        "post_id": p.id,
        "media_id": a.media.id,
        "url": p.url,
        "platform": p.platform,
        "platform_post_id": p.platform_post_id,
        "uploader": p.uploader,
        "uploader_id": p.uploader_id,
        "title": p.title,
        "published_at": _iso(p.published_at),
        "published_precision": p.published_precision,
        "published_source": p.published_source,
        "first_seen_at": _iso(p.first_seen_at),
        "sha256": a.media.sha256,
        "duration": a.media.duration,
        "container_created_at": _iso(a.media.container_created_at),
        "flags": list(a.flags),
        "ambiguous_with": list(a.ambiguous_with),
        "match": match_json(a.match, query_duration, a.media.duration),
        "observations": observations_json(a.observations),
    }


def report_json(report: EarliestReport) -> dict[str, Any]:
    appearances = [appearance_json(a, report.query_duration) for a in report.appearances]
    return {
        "query": {"path": str(report.query_path), "url": report.query_url, "sha256": report.query_sha256,
                  "duration": report.query_duration},
        "earliest": appearances[0] if appearances else None,
        "appearances": appearances,
    }


def render_json(report: EarliestReport) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False)


def _claim_text(a: Appearance) -> str:
    p = a.post
    if p.published_at is None:
        return "no claim"
    when = p.published_at.strftime("%Y-%m-%d") if p.published_precision == "day" \
        else p.published_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{when} ({p.published_precision}, {p.published_source})"


def _match_text(a: Appearance) -> str:
    if a.match is None:
        return "identical file"
    m = a.match
    segs = ", ".join(f"q {_seconds(s.query_start)}–{_seconds(s.query_end)} ↔ "
                     f"{_seconds(s.stored_start)}–{_seconds(s.stored_end)}" for s in m.segments[:3])
    more = f" (+{len(m.segments) - 3})" if len(m.segments) > 3 else ""
    edits = detected_edits(m)
    return (f"{m.query_coverage:.0%} of query / {m.stored_coverage:.0%} of stored; {segs}{more}"
            + (f"; {', '.join(edits)}" if edits else ""))


def render_text(report: EarliestReport, console: Console) -> None:
    """A table for people, earliest first, with the evidence for each row."""
    console.print(f"[bold]Query[/bold] {escape(shown(report.query_path))}  sha256 {report.query_sha256[:16]}…  "
                  f"{report.query_duration:.1f} s")
    if not report.appearances:
        console.print("No stored appearance of this footage.")
        return
    e = report.earliest
    console.print(f"[bold green]Earliest:[/bold green] {escape(e.post.url)} — {escape(_claim_text(e))}"
                  + (f" [yellow]({', '.join(e.flags)})[/yellow]" if e.flags else ""))
    table = Table(show_lines=True)
    for column in ("#", "published (claim)", "first seen", "where", "match", "flags"):
        table.add_column(column, overflow="fold")
    for i, a in enumerate(report.appearances, 1):
        where = f"{a.post.platform or '?'} · {a.post.uploader or '?'}\n{a.post.url}\nsha256 {a.media.sha256[:12]}…"
        flags = ", ".join(a.flags)
        if a.ambiguous_with:
            flags += f" (with post {', '.join(map(str, a.ambiguous_with))})"
        table.add_row(str(i), _claim_text(a), _when(a.post.first_seen_at), escape(where),
                      escape(_match_text(a)), escape(flags))
    console.print(table)
    for i, a in enumerate(report.appearances, 1):
        for line in history_lines(a.post, a.observations):
            console.print(f"#{i} {escape(line)}", soft_wrap=True)


def _md(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def render_markdown(report: EarliestReport) -> str:
    lines = [f"# Earliest appearance of `{_md(shown(report.query_path.name))}`", "",
             f"- Query SHA-256: `{report.query_sha256}`", f"- Duration: {report.query_duration:.2f} s"]
    if report.earliest:
        e = report.earliest
        lines.append(f"- **Earliest:** <{e.post.url}> — {_md(_claim_text(e))}"
                     + (f" ({', '.join(e.flags)})" if e.flags else ""))
    else:
        lines.append("- No stored appearance of this footage.")
    lines += ["", "| # | published (claim) | first seen | platform | uploader | URL | match | flags |",
              "|---|---|---|---|---|---|---|---|"]
    for i, a in enumerate(report.appearances, 1):
        lines.append(f"| {i} | {_md(_claim_text(a))} | {_when(a.post.first_seen_at)} | {_md(a.post.platform)} | "
                     f"{_md(a.post.uploader)} | <{_md(a.post.url)}> | {_md(_match_text(a))} | {_md(', '.join(a.flags))} |")
    history = [f"- #{i}: {_md(line)}" for i, a in enumerate(report.appearances, 1)
               for line in history_lines(a.post, a.observations)]
    lines += ["", "## Revisits (our observations)", "", *history] if history else []
    return "\n".join(lines) + "\n"


def _thumbnail(path: Path, at: float, mirror: bool = False) -> str | None:
    """A small JPEG of the frame at `at` seconds, as a data URI; None when it cannot be cut."""
    vf = "scale=200:-2" + (",hflip" if mirror else "")
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-ss", f"{max(0.0, at):.3f}", "-i", f"file:{path.resolve()}",
           "-frames:v", "1", "-vf", vf, "-f", "image2pipe", "-c:v", "mjpeg", "-q:v", "5", "pipe:1"]
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(out).decode() if out else None


def _spread(items: list, n: int) -> list:
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top}.flag{color:#a60}.pair{display:inline-block;
margin:4px;text-align:center;font-size:12px}.pair img{display:block;max-width:200px}section{margin:1.5em 0;
padding:1em;border:1px solid #ddd;border-radius:6px}h2{font-size:1.1em}code{font-size:12px}"""


def render_html(report: EarliestReport, store: MediaStore) -> str:
    e = html.escape
    parts = [f"<!doctype html><meta charset='utf-8'><title>Earliest appearance: {e(shown(report.query_path.name))}</title>",
             f"<style>{_CSS}</style>", f"<h1>Earliest appearance of <code>{e(shown(report.query_path.name))}</code></h1>",
             f"<p>Query SHA-256 <code>{report.query_sha256}</code>, {report.query_duration:.2f} s.</p>"]
    if not report.appearances:
        parts.append("<p>No stored appearance of this footage.</p>")
    else:
        first = report.earliest
        parts.append(f"<p><b>Earliest:</b> <a href='#a1'>{e(first.post.url)}</a> — {e(_claim_text(first))}"
                     + "".join(f" <span class='flag'>[{e(f)}]</span>" for f in first.flags) + "</p>")
        index = {a.post.id: n for n, a in enumerate(report.appearances, 1)}
        rows = "".join(
            f"<tr><td><a href='#a{n}'>{n}</a></td><td>{e(_claim_text(a))}</td><td>{e(_when(a.post.first_seen_at))}</td>"
            f"<td>{e(a.post.platform or '')} · {e(a.post.uploader or '')}</td><td>{e(_match_text(a))}</td>"
            f"<td>{e(', '.join(a.flags))}"
            + (f" (with #{', #'.join(str(index[p]) for p in a.ambiguous_with if p in index)})" if a.ambiguous_with else "")
            + "</td></tr>"
            for n, a in enumerate(report.appearances, 1))
        parts.append("<table><tr><th>#</th><th>published (claim)</th><th>first seen</th><th>where</th>"
                     f"<th>match</th><th>flags</th></tr>{rows}</table>")
    for i, a in enumerate(report.appearances, 1):
        flags = "".join(f" <span class='flag'>[{e(f)}]</span>" for f in a.flags)
        parts.append(f"<section id='a{i}'><h2>{i}. {e(a.post.platform or '?')} · {e(a.post.uploader or '?')}{flags}</h2>")
        parts.append("<table>" + "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in (
            ("URL", f"<a href='{e(a.post.url)}'>{e(a.post.url)}</a>"),
            ("title", e(a.post.title or "")),
            ("published (claim)", e(_claim_text(a))),
            ("first seen (observation)", e(_when(a.post.first_seen_at))),
            ("file", f"<code>{a.media.sha256}</code> · {a.media.width}×{a.media.height} · {a.media.duration or 0:.2f} s"),
            ("match", e(_match_text(a))),
            ("revisits (our observations)", "<br>".join(map(e, history_lines(a.post, a.observations))) or "not revisited"),
        )) + "</table>")
        pairs = [] if a.match is None else _spread(a.match.pairs, HTML_FRAMES_PER_APPEARANCE)
        if a.match is None:
            mid = (a.media.duration or report.query_duration) / 2
            pairs_html = [(mid, mid, 0)]
        else:
            pairs_html = [(p.query_time, p.stored_time, p.distance) for p in pairs]
        stored_path = store.path(a.media.store_path)
        for q_time, s_time, distance in pairs_html:
            q_img = _thumbnail(report.query_path, q_time)
            s_img = _thumbnail(stored_path, s_time, mirror=bool(a.match and a.match.mirrored))
            parts.append("<div class='pair'>" + "".join(
                "<figure style='display:inline-block;margin:2px'>"
                + (f"<img src='{img}' alt='{label}'>" if img else "<div>(no frame)</div>")
                + f"<figcaption>{label} {_seconds(t)}</figcaption></figure>"
                for img, label, t in ((q_img, "query", q_time), (s_img, "stored", s_time)))
                + f"<div>distance {distance} bits{' (stored shown mirrored)' if a.match and a.match.mirrored else ''}"
                f"</div></div>")
        parts.append("</section>")
    return "\n".join(parts) + "\n"
