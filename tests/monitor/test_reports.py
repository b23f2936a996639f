"""Reports: golden files for every format (a file query and a URL query), hostile stored fields, layout.

The store holds real footage (the committed chair trims, so the bytes and
matches are the same on every machine) under hostile metadata: script tags,
`javascript:` URLs, SVG and `onerror` payloads, Markdown link and image
syntax, control characters and direction overrides, very long words.
Outputs are normalised only where they depend on the machine or the run:
the checkout's path, the test server's port, the time the report was made,
the JPEG bytes of the frames (numbered by first appearance, so a frame shown
twice still shows as the same one).
"""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.jobs.earliest import EarliestReport, find_earliest, find_earliest_url
from monitor.jobs.ingest import ingest_file
from monitor.reports import FORMATS, render_report
from monitor.workspace import Workspace
from storage.records import NewPost

QUERY = "chair-orig-22-sd-bar.mp4"  # not stored: the store holds two trims of it
GENERATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
EXTENSION = {"text": "txt", "json": "json", "markdown": "md", "html": "html"}

HOSTILE_LABEL = 'Harbour <b>Gazette</b> <svg onload=alert("label")>'
HOSTILE_POSTS = [
    # chair-20: 2.0 s into the original to its end; found by a watch
    ("chair-20-sd-bar.mp4", dict(
        url="https://example.org/watch?v=chair20&list=PL1#t=1",
        platform="example.org", uploader='<script>alert("uploader")</script>',
        title="Harbour fire [click me](javascript:alert(1)) ![x](https://evil.example/x.png) **bold** `code` | pipe",
        published_at=datetime(2024, 3, 1, 9, 30, tzinfo=UTC), published_precision="second",
        published_source="rss pubDate", first_seen_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC))),
    # chair-19: 3.7 s into the original to its end; a day claim on the same day
    ("chair-19-sd-bar.mp4", dict(
        url='https://example.org/v/19"><img src=x onerror=alert(1)>',
        platform="telegram", uploader="\u202eknil\u202c desk\x1b[31m red",
        title="A" + "W" * 300 + " \x07bell <iframe src=javascript:alert(4)>",
        published_at=datetime(2024, 3, 1, tzinfo=UTC), published_precision="day",
        published_source="yt-dlp upload_date", first_seen_at=datetime(2024, 3, 1, 18, 0, tzinfo=UTC))),
    # the same bytes again, no claim, a javascript: URL
    ("chair-19-sd-bar.mp4", dict(
        url="javascript:alert(document.domain)", platform=None, uploader="[x](javascript:alert(2))",
        title="<svg/onload=alert(3)> <a href=\"javascript:alert(5)\">x</a>",
        first_seen_at=datetime(2024, 3, 3, 8, 0, tzinfo=UTC))),
]


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory, chair_dir):
    """A SQLite store of the chair trims under hostile metadata; yields the open workspace."""
    ws = Workspace.open(load_config(None, tmp_path_factory.mktemp("reports") / "data", None))
    watch = ws.repository.add_watch("https://example.org/feed.rss", "rss", HOSTILE_LABEL, 3600)
    for n, (name, fields) in enumerate(HOSTILE_POSTS):
        ingest_file(ws, chair_dir / name, NewPost(media_id=0, watch_id=watch.id if n == 0 else None, **fields))
    yield ws
    ws.close()


def normalised(text: str, chair_dir: Path, port: int | None = None) -> str:
    text = text.replace(str(chair_dir), "<CHAIR_DIR>")
    if port:
        text = text.replace(f"127.0.0.1:{port}", "127.0.0.1:PORT")
    images: dict[str, int] = {}
    return re.sub(r"data:image/jpeg;base64,[A-Za-z0-9+/=]+",
                  lambda m: f"data:image/jpeg;base64,<JPEG {images.setdefault(m[0], len(images) + 1)}>", text)


def _all_formats(report: EarliestReport, ws) -> dict[str, str]:
    report.generated_at = GENERATED_AT
    return {fmt: render_report(fmt, report, ws.store) for fmt in FORMATS}


@pytest.fixture(scope="module")
def file_outputs(hostile_store, chair_dir):
    report = find_earliest(hostile_store, chair_dir / QUERY)
    return report, _all_formats(report, hostile_store)


@pytest.fixture(scope="module")
def url_outputs(hostile_store, chair_dir, http_server):
    url = http_server.add_file("/reports/chair%20orig.mp4", chair_dir / QUERY, "video/mp4")
    with tempfile.TemporaryDirectory(prefix="provenance-query-") as tmp:
        report = find_earliest_url(hostile_store, url, Path(tmp))
        return url, report, _all_formats(report, hostile_store)


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_query_matches_its_golden_file(file_outputs, chair_dir, golden, fmt):
    golden.check(f"report-file.{EXTENSION[fmt]}", normalised(file_outputs[1][fmt], chair_dir))


@pytest.mark.parametrize("fmt", FORMATS)
def test_url_query_matches_its_golden_file(url_outputs, chair_dir, http_server, golden, fmt):
    golden.check(f"report-url.{EXTENSION[fmt]}", normalised(url_outputs[2][fmt], chair_dir, http_server.port))


def test_the_store_gives_the_report_what_it_is_about(file_outputs):
    report, outputs = file_outputs
    # the day claim (chair-19, post 2) starts at midnight: first, and ambiguous with chair-20's 09:30 (post 1)
    assert [a.post.id for a in report.appearances] == [2, 1, 3]
    assert report.appearances[1].watch.label == HOSTILE_LABEL and report.appearances[0].watch is None
    assert {(r.media_id, r.match.media_id) for r in report.relations} == {(1, 2), (2, 1)}
    data = json.loads(outputs["json"])
    assert data["query"]["path"].endswith(QUERY) and data["query"]["url"] is None
    assert [(u["query_start"], u["query_end"]) for u in data["unmatched"]] == [(0.0, pytest.approx(2.0, abs=0.5))]
    links = {(k["child_post_id"], k["parent_post_id"]): k for k in data["derivation"]["links"]}
    assert set(links) == {(1, 2), (3, 2), (None, 1)}
    assert links[(1, 2)]["kind"] == "shares" and links[(1, 2)]["order_certain"] is False  # chair-20 has 1.7 s more
    assert links[(3, 2)]["kind"] == "identical"
    assert links[(None, 1)]["kind"] == "shares"  # the query has ~2 s that chair-20 lacks, and 3.7 s chair-19 lacks


def test_url_query_shows_its_frames_and_the_url_as_given(url_outputs):
    url, report, outputs = url_outputs
    assert report.query_path is None and report.query_url == url and "%20" in url
    page = outputs["html"]
    shown = page.count('class="frame query')
    assert shown == sum(min(4, len(a.match.pairs)) for a in report.appearances) > 0
    assert 'class="frame missing' not in page and "no longer available" not in page
    data = json.loads(outputs["json"])
    assert data["query"] == {**data["query"], "path": None, "url": url}
    for fmt in ("text", "markdown", "html"):
        assert url in outputs[fmt], fmt
    assert "http:/127" not in outputs["text"]


def test_a_url_report_rendered_after_its_download_is_gone_says_so(url_outputs, hostile_store):
    _, report, _ = url_outputs
    assert not report.query_file.exists()  # the temporary directory is gone
    page = render_report("html", report, hostile_store.store)
    assert "no longer available" in page and 'class="frame query' not in page
    assert 'class="frame stored' in page


HOSTILE_BITS = ["<script", "<svg", "<img", "<iframe", "onload=", "onerror=", "javascript:alert", "\u202e", "\x1b",
                "\x07", "<b>"]


def test_html_escapes_every_stored_field_and_links_only_http(file_outputs):
    page = file_outputs[1]["html"]
    body = page.split("</style>", 1)[1]
    for bit in ("<script", "<svg onload", "<svg/onload", "<img src=x", "<iframe", "<b>Gazette", "\u202e", "\x1b",
                "\x07"):
        assert bit not in body, bit
    hrefs = re.findall(r'href="([^"]*)"', body)
    assert all(h.startswith(("https://", "#")) for h in hrefs), hrefs
    assert 'href="https://example.org/watch?v=chair20&amp;list=PL1#t=1"' in body
    assert "javascript:alert(document.domain)" in body  # shown, as text
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:;" in page
    assert not re.search(r"(src|href)=\"(?!data:|#|https://)", body)  # self-contained: nothing is fetched


def test_markdown_escapes_html_and_markdown_syntax(file_outputs):
    md = file_outputs[1]["markdown"]
    for bit in ("<script", "<svg", "<img", "<iframe", "](javascript", "![x](", "**bold**", "`code`", "\u202e", "\x1b"):
        assert bit not in md, bit
    assert "&lt;script&gt;" in md and r"\[click me\]\(javascript:alert\(1\)\)" in md
    assert "<https://example.org/watch?v=chair20&list=PL1#t=1>" in md
    assert "<javascript:" not in md and "javascript:alert\\(document.domain\\)" in md
    table = [line for line in md.splitlines() if line.startswith("| 1 |")][0]
    assert len(re.findall(r"(?<!\\)\|", table)) == 8  # a stored | cannot add a column


def test_text_and_json_keep_stored_fields_exact_or_visibly_escaped(file_outputs):
    text, data = file_outputs[1]["text"], json.loads(file_outputs[1]["json"])
    assert "\u202e" not in text and "\x1b" not in text and "\\u202eknil\\u202c desk\\x1b[31m red" in text
    assert data["appearances"][0]["uploader"] == HOSTILE_POSTS[1][1]["uploader"]  # JSON keeps the bytes
    assert data["appearances"][1]["watch"]["label"] == HOSTILE_LABEL


@pytest.mark.parametrize("width", [60, 80, 140])
def test_text_never_breaks_a_url(file_outputs, hostile_store, width):
    report = file_outputs[0]
    text = render_report("text", report, hostile_store.store, width=width)
    lines = text.splitlines()
    for a in report.appearances:
        assert any(line.strip() == a.post.url for line in lines), (width, a.post.url)
    assert "Harbour Gazette" not in text and "<b>Gazette</b>" in text  # the watch label, as stored
    for a in report.appearances:
        assert f"    sha256 {a.media.sha256}" in lines  # a hash is copied too: never broken
    wrapped = [line for line in lines if not any(whole in line for whole in ("example.org", "javascript:", "sha256"))]
    assert all(len(line) <= width for line in wrapped)


def test_each_frame_is_cut_once(file_outputs, hostile_store, monkeypatch):
    """A frame shown twice (the same file, two posts) is cut once, and all frames come from few processes."""
    import subprocess

    from monitor.reports import frames

    calls = []
    real_run = subprocess.run

    def counting_run(cmd, *args, **kwargs):
        calls.append(cmd)
        return real_run(cmd, *args, **kwargs)

    monkeypatch.setattr(frames.subprocess, "run", counting_run)
    page = render_report("html", file_outputs[0], hostile_store.store)
    listing = [c for c in calls if "framecrc" in c]
    cutting = [c for c in calls if "image2" in c]
    assert len(listing) <= frames.PROCESSES and len(cutting) <= frames.PROCESSES
    assert len(calls) == len(listing) + len(cutting)
    outputs = sum(c.count("-map") for c in cutting)
    images = re.findall(r'src="(data:image/jpeg;base64,[^"]+)"', page)
    assert outputs == len(set(images)) < len(images)  # #1 and #3 are the same file: their frames are shared


def _chromium() -> str:
    import os
    import shutil

    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("PROVENANCE_TEST_BROWSER") == "skip":
        pytest.skip("browser tests skipped because PROVENANCE_TEST_BROWSER=skip")
    pytest.fail("the HTML report is checked in headless Chromium: install it (`apt-get install chromium`, which "
                "`make test` does) or set PROVENANCE_TEST_BROWSER=skip", pytrace=False)


def _dom_after_load(browser: str, page: Path) -> str:
    import subprocess

    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--user-data-dir=" + str(page.parent / "profile"), "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _elements(dom: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every element of a serialised DOM, with its attributes."""
    from html.parser import HTMLParser

    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, [(name, value or "") for name, value in attrs]))

    Collect().feed(dom)
    return found


CANARY = ("<script>document.body.setAttribute('data-ran', 'script')</script>"
          "<img src=x onerror=\"document.body.setAttribute('data-ran', 'onerror')\">")


def test_html_renders_in_chromium_and_nothing_stored_runs(file_outputs, tmp_path):
    """In a real browser: the page renders its figures and frames, no stored field becomes an element or a
    handler, and the page's CSP stops a script even if one got in (checked against the same page without it)."""
    browser = _chromium()
    page = file_outputs[1]["html"]
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    dom = _dom_after_load(browser, path)
    elements = _elements(dom)
    tags = [tag for tag, _ in elements]
    assert tags.count("svg") == 3 and tags.count("img") == page.count("<img ") > 0
    assert not {"script", "iframe", "object", "embed", "base", "form"} & set(tags)
    assert not [(tag, name) for tag, attrs in elements for name, _ in attrs if name.startswith("on")]
    assert all(value.startswith(("https://", "#")) for tag, attrs in elements for name, value in attrs
               if tag == "a" and name == "href")
    assert all(value.startswith("data:image/jpeg;base64,") for tag, attrs in elements for name, value in attrs
               if name in ("src", "srcset"))
    assert "data-ran" not in dom and "&lt;script&gt;alert(\"uploader\")&lt;/script&gt;" in dom  # shown as text

    injected = tmp_path / "injected.html"
    injected.write_text(page.replace("</body>", CANARY + "</body>"), encoding="utf-8")
    ran = re.compile(r"<body[^>]*\sdata-ran=")
    assert not ran.search(_dom_after_load(browser, injected))
    without_csp = tmp_path / "without-csp.html"
    without_csp.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
                           .replace("</body>", CANARY + "</body>"), encoding="utf-8")
    assert ran.search(_dom_after_load(browser, without_csp))  # the canary does run without the policy
