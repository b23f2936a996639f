"""Revisits against a local site: a page that goes away and comes back edited, a direct file that changes.

Everything is served from 127.0.0.1 by the session's HTTP server; pages and
files switch what they answer between revisits, as platforms do.
"""

from __future__ import annotations

import socket
import re
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from yt_dlp.networking.exceptions import TransportError
from yt_dlp.utils import ExtractorError, GeoRestrictedError

from monitor.config import ConfigError
from monitor.jobs.revisit import (ScheduleStep, classify_failure, media_from_headers, next_revisit, parse_schedule,
                                  revisit_due)
from monitor.reports.observations import history_lines
from monitor.sources import SourceError, YtDlpSource
from storage.records import NewObservation, NewPost, ObservationRecord, PostRecord, RevisitState
from tests.monitor.test_cli_core import Provenance

DATA = Path(__file__).parent / "data"
H, D = timedelta(hours=1), timedelta(days=1)


class SwitchingPage:
    """An og:video page on the local server whose answer the test switches: up (with a title) or an HTTP error."""

    def __init__(self, http_server, clip: Path) -> None:
        self.prefix = f"/revisit-{uuid.uuid4().hex[:8]}"
        http_server.add_file(f"{self.prefix}/clip.mp4", clip, "video/mp4")
        self.template = (DATA / "og_video.html").read_text().replace("{base}/og/clip.mp4",
                                                                      f"{http_server.base}{self.prefix}/clip.mp4")
        self.title, self.status = "Harbour fire, eyewitness video", 200
        self.url = http_server.add_route(f"{self.prefix}/page.html", self._answer)

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        if self.status != 200:
            request.send_error(self.status)
            return
        body = self.template.replace("Harbour fire, eyewitness video", self.title).encode()
        request.send_response(200)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


@pytest.fixture
def prov(tmp_path, database_url) -> Provenance:
    config = tmp_path / "config.toml"
    config.write_text("[ytdlp]\nretries = 0\nsocket_timeout = 5\n")
    prov = Provenance(tmp_path / "data", database_url)
    prov.base += ["--config", str(config)]
    return prov


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _when(text: str) -> str:
    return _at(text).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_a_page_removed_then_back_with_another_title_shows_in_the_report(prov, http_server, tiny_clips):
    clip = tiny_clips["mandelbrot"]
    page = SwitchingPage(http_server, clip)
    prov("watch", "add", page.url, "--every", "1h")
    assert "1 new" in prov("run-once").stdout

    seen = []
    for status, title in ((200, page.title), (404, page.title), (200, "Harbour fire: the pier burns (updated)")):
        page.status, page.title = status, title
        seen.append(prov.json("revisit", "--all", "--json")["observations"])
    statuses = [[o["status"] for o in run] for run in seen]
    assert statuses == [["up"], ["removed"], ["up"]]
    up, removed, back = (run[0] for run in seen)
    assert up["method"] == removed["method"] == "yt-dlp metadata" and "yt-dlp" in up["tool"]
    assert up["changes"] == {} and up["title"] == "Harbour fire, eyewitness video"
    assert (removed["error_kind"], removed["http_status"]) == ("http-404", 404)
    assert back["changes"]["title"] == {"old": "Harbour fire, eyewitness video",
                                        "new": "Harbour fire: the pier burns (updated)",
                                        "old_seen_at": up["observed_at"]}
    assert "description" not in back["changes"] and back["media_changed"] is False

    report = prov.json("find-earliest", str(clip), "--format", "json")
    (appearance,) = report["appearances"]
    assert [o["status"] for o in appearance["observations"]] == ["up", "removed", "up"]
    assert appearance["observations"][2]["changes"]["title"]["new"] == "Harbour fire: the pier burns (updated)"

    removed_line = f"removed between {_when(up['observed_at'])} and {_when(removed['observed_at'])} (http-404)"
    title_line = (f"title changed between {_when(up['observed_at'])} and {_when(back['observed_at'])}: "
                  "'Harbour fire, eyewitness video' → 'Harbour fire: the pier burns (updated)'")
    back_line = f"up again between {_when(removed['observed_at'])} and {_when(back['observed_at'])}"
    text = prov("find-earliest", str(clip), "--format", "text", "-o", str(prov.data_dir.parent / "r.txt"))
    assert text.exit_code == 0
    report_text = (prov.data_dir.parent / "r.txt").read_text()
    flowing = " ".join(report_text.split())  # long lines wrap at the report's width
    for line in (removed_line, title_line, back_line):
        assert f"revisits: {line}" in flowing, report_text
    prov("find-earliest", str(clip), "--format", "html", "-o", str(prov.data_dir.parent / "r.html"))
    html = (prov.data_dir.parent / "r.html").read_text()
    assert removed_line in html and "title changed between" in html and "&#39;Harbour fire" in html
    prov("find-earliest", str(clip), "--format", "markdown", "-o", str(prov.data_dir.parent / "r.md"))
    markdown = re.sub(r"\\(.)", r"\1", (prov.data_dir.parent / "r.md").read_text())  # Markdown escapes undone
    assert f"- Revisits (our observations): {removed_line}" in markdown


def test_a_direct_file_is_checked_by_head_and_a_changed_file_is_flagged(prov, http_server, tiny_clips):
    path = f"/revisit-{uuid.uuid4().hex[:8]}/clip.mp4"
    first = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    url = http_server.add_file(path, tiny_clips["life"], "video/mp4", last_modified=first)
    prov("watch", "add", url)
    prov("run-once")

    same = prov.json("revisit", "--all", "--json")["observations"][0]
    post_id = same["post_id"]
    assert (same["status"], same["method"], same["changes"], same["media_changed"]) == ("up", "http head", {}, False)
    assert same["media"]["content_length"] == tiny_clips["life"].stat().st_size

    http_server.add_file(path, tiny_clips["cellauto"], "video/mp4", last_modified=first + timedelta(days=2))
    changed = prov.json("revisit", "--post", str(post_id), "--json")["observations"][0]
    assert changed["status"] == "up" and changed["media_changed"] is True
    assert changed["changes"]["media"]["last_modified"] == {"old": "2024-03-01T09:00:00Z", "new": "2024-03-03T09:00:00Z",
                                                            "old_seen_at": same["observed_at"]}
    assert changed["changes"]["media"]["content_length"]["new"] == tiny_clips["cellauto"].stat().st_size
    http_server.add_status(path, 410)
    gone = prov.json("revisit", "--post", str(post_id), "--json")["observations"][0]
    assert (gone["status"], gone["error_kind"]) == ("removed", "http-410")
    report = prov.json("find-earliest", str(tiny_clips["life"]), "--format", "json")
    assert [o["status"] for o in report["appearances"][0]["observations"]] == ["up", "up", "removed"]
    text = prov.data_dir.parent / "report.md"
    prov("find-earliest", str(tiny_clips["life"]), "--format", "markdown", "-o", str(text))
    markdown = re.sub(r"\\(.)", r"\1", text.read_text())  # Markdown escapes undone
    assert (f"- Revisits (our observations): the file as described by the platform changed between "
            f"{_when(same['observed_at'])} and {_when(changed['observed_at'])} (content_length ") in markdown
    assert f"removed between {_when(changed['observed_at'])} and {_when(gone['observed_at'])} (http-410)" in markdown


def test_a_server_that_refuses_head_is_asked_for_one_byte(http_server):
    size = 123456

    def no_head(request: BaseHTTPRequestHandler) -> None:
        if request.command == "HEAD":
            request.send_error(405)
            return
        assert request.headers["Range"] == "bytes=0-0"
        request.send_response(206)
        for name, value in (("Content-Type", "video/mp4"), ("Content-Range", f"bytes 0-0/{size}"),
                            ("Content-Length", "1"), ("ETag", '"v1"')):
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(b"\0")

    url = http_server.add_route(f"/revisit-{uuid.uuid4().hex[:8]}/nohead.mp4", no_head)
    status, headers = YtDlpSource({"retries": 0, "socket_timeout": 5}).head(url)
    assert status == 206 and media_from_headers(status, headers) == {"content_length": size, "etag": '"v1"',
                                                              "content_type": "video/mp4"}


def test_posts_from_local_files_are_never_revisited(prov, tiny_clips):
    prov("ingest", str(tiny_clips["testsrc"]))
    assert prov.json("revisit", "--all", "--json") == {"observations": [], "skipped": [], "statuses": {}}
    assert prov.json("revisit", "--json")["observations"] == []
    assert "stored from a local file" in prov("revisit", "--post", "1", expect=2).stderr
    assert "no post with id 99" in prov("revisit", "--post", "99", expect=2).stderr


def test_revisit_due_follows_the_schedule_and_is_idempotent(database_url, tmp_path, http_server, tiny_clips):
    from monitor.config import load_config
    from monitor.workspace import Workspace

    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        media = ws.repository.add_media(_media())
        url = http_server.add_file(f"/revisit-{uuid.uuid4().hex[:8]}/due.mp4", tiny_clips["testsrc"], "video/mp4")
        now = datetime.now(UTC)
        fresh = ws.repository.add_post(NewPost(media_id=media.id, url=url, first_seen_at=now - 2 * H))
        old = ws.repository.add_post(NewPost(media_id=media.id, url=url + "?old", first_seen_at=now - 40 * D))
        ws.repository.add_post(NewPost(media_id=media.id, url="file:///somewhere/clip.mp4", first_seen_at=now - D))
        ws.repository.add_observation(NewObservation(post_id=old.id, observed_at=now - 3 * D, status="up",
                                                     method="http head", tool="test"))
        source = YtDlpSource({"retries": 0, "socket_timeout": 5})
        first = revisit_due(ws, now, source)
        # the fresh post is an hour overdue; the old one is weekly and was seen 3 days ago; the file is never due
        assert [o.post_id for o in first.observations] == [fresh.id]
        assert first.observations[0].status == "up"
        assert revisit_due(ws, now, source).observations == []  # idempotent
        week_later = revisit_due(ws, now + 5 * D, source)
        assert sorted(o.post_id for o in week_later.observations) == [fresh.id, old.id]
    finally:
        ws.close()


def test_the_daemon_runs_the_due_revisits_as_a_periodic_job(database_url, tmp_path, http_server, tiny_clips):
    import threading

    from monitor.config import load_config
    from monitor.jobs.registry import JOBS, JobContext, periodic_jobs
    from monitor.workspace import Workspace

    assert JOBS["revisit"] in periodic_jobs() and JOBS["revisit"].every == "revisit_seconds"
    ws = Workspace.open(load_config(None, tmp_path / "data", database_url))
    try:
        url = http_server.add_file(f"/revisit-{uuid.uuid4().hex[:8]}/due.mp4", tiny_clips["testsrc"], "video/mp4")
        post = ws.repository.add_post(NewPost(media_id=ws.repository.add_media(_media()).id, url=url,
                                              first_seen_at=datetime.now(UTC) - 2 * H))
        context = JobContext(ws=ws, source=YtDlpSource({"retries": 0, "socket_timeout": 5}),
                             defer=lambda name, **args: None, holder="test", durable=False, stop=threading.Event())
        assert JOBS["revisit"].run(context) == 1
        assert [o.status for o in ws.repository.observations_for_posts([post.id])[post.id]] == ["up"]
        assert JOBS["revisit"].run(context) == 0  # not due again yet
    finally:
        ws.close()


def _media():
    from storage.records import NewMedia

    return NewMedia(sha256=uuid.uuid4().hex * 2, size_bytes=1, store_path="media/x.mp4", duration=2.0, width=160,
                    height=120, fps=10.0, video_codec="h264", audio_codec=None, container_format="mp4",
                    container_created_raw=None, container_created_at=None)


def test_schedule_parsing_and_next_revisit():
    steps = parse_schedule(["1h until 1d", "1d until 30d", "7d"])
    assert steps == [ScheduleStep(H, D), ScheduleStep(D, 30 * D), ScheduleStep(7 * D, None)]
    seen = datetime(2024, 3, 1, tzinfo=UTC)

    def state(last: timedelta | None) -> RevisitState:
        return RevisitState(1, "https://example.org/v", seen, seen + last if last is not None else None)

    assert next_revisit(state(None), steps) == seen + H
    assert next_revisit(state(23 * H), steps) == seen + 24 * H
    assert next_revisit(state(D), steps) == seen + 2 * D
    assert next_revisit(state(30 * D), steps) == seen + 37 * D
    assert next_revisit(state(400 * D), steps) == seen + 407 * D
    finite = parse_schedule(["30m until 2h"])
    assert next_revisit(state(H), finite) == seen + 90 * timedelta(minutes=1)
    assert next_revisit(state(2 * H), finite) is None  # the schedule is over
    assert parse_schedule([]) == []
    for bad in (["7d", "1h until 1d"], ["1h until 2d", "1d until 1d"], ["often"], ["1h until soon"], ["0h"], "1h"):
        with pytest.raises(ConfigError, match=r"\[revisit\] schedule"):
            parse_schedule(bad)


def _failure_of(call) -> SourceError:
    with pytest.raises(SourceError) as caught:
        call()
    return caught.value


@pytest.mark.parametrize("status, expected", [
    (404, ("removed", "http-404")), (410, ("removed", "http-410")), (451, ("geo-blocked", "http-451")),
    (401, ("private", "http-401")), (403, ("unreachable", "http-403")), (429, ("unreachable", "http-429")),
    (503, ("unreachable", "http-5xx")),
])
def test_http_statuses_from_yt_dlp_map_to_statuses(http_server, status, expected):
    source = YtDlpSource({"retries": 0, "socket_timeout": 5})
    page = http_server.add_status(f"/revisit-status/{status}", status)
    media = http_server.add_status(f"/revisit-status/{status}.mp4", status)
    for call in (lambda: source.metadata(page), lambda: source.head(media)):
        failure = classify_failure(_failure_of(call))
        assert (failure.status, failure.kind, failure.http_status) == (*expected, status)


def test_network_failures_and_platform_messages_map_to_statuses(http_server):
    source = YtDlpSource({"retries": 0, "socket_timeout": 5})
    refused = classify_failure(_failure_of(lambda: source.metadata(http_server.refused_url("/x"))))
    assert (refused.status, refused.kind) == ("unreachable", "refused")
    http_server.add_template("/revisit-novideo.html", "<html><title>x</title><body>text</body></html>", "text/html")
    empty = classify_failure(_failure_of(lambda: source.metadata(http_server.url("/revisit-novideo.html"))))
    assert (empty.status, empty.kind) == ("removed", "no-video")

    def wrapped(cause: BaseException) -> SourceError:
        try:
            try:
                raise TransportError(cause=cause)
            except TransportError as inner:
                raise SourceError("network error") from inner
        except SourceError as outer:
            return outer

    assert classify_failure(wrapped(socket.gaierror(-2, "Name or service not known"))).kind == "dns"
    assert classify_failure(wrapped(TimeoutError("timed out"))).kind == "timeout"
    for message, expected in [
        ("Private video. Sign in if you've been granted access to this video", "private"),
        ("This video is only available for registered users", "private"),
        ("Video unavailable. This video has been removed by the uploader", "removed"),
        ("This video is no longer available because the YouTube account associated with this video has been "
         "terminated.", "removed"),
        ("The uploader has not made this video available in your country", "geo-blocked"),
        ("Unable to extract video data", "unreachable"),
    ]:
        assert classify_failure(ExtractorError(message, expected=True)).status == expected, message
    assert classify_failure(GeoRestrictedError("blocked", countries=["DE"])).status == "geo-blocked"


def _obs(at: datetime, status: str, **fields) -> ObservationRecord:
    return ObservationRecord(post_id=1, observed_at=at, status=status, method="yt-dlp metadata", tool="t", **fields)


def test_history_lines_open_and_close_spans_and_ignore_unreachable():
    seen = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    downloaded = PostRecord(id=1, media_id=1, url="https://example.org/v", first_seen_at=seen,
                            raw_metadata={"yt_dlp": {"title": "a"}})
    lines = history_lines(downloaded, [
        _obs(seen + H, "up", title="a", view_count=10),
        _obs(seen + 2 * H, "unreachable", error_kind="timeout"),
        _obs(seen + 3 * H, "private", error_kind="private"),
        _obs(seen + 4 * H, "removed", error_kind="http-404"),
        _obs(seen + 5 * H, "up", title="b", view_count=12,
             changes={"title": {"old": "a", "new": "b", "old_seen_at": "2024-03-01T10:00:00Z"}}),
    ])
    assert lines == [
        "made private between 2024-03-01 10:00:00 UTC and 2024-03-01 12:00:00 UTC (private)",
        "removed between 2024-03-01 10:00:00 UTC and 2024-03-01 13:00:00 UTC (http-404)",
        "title changed between 2024-03-01 10:00:00 UTC and 2024-03-01 14:00:00 UTC: 'a' → 'b'",
        "up again between 2024-03-01 13:00:00 UTC and 2024-03-01 14:00:00 UTC",
        "5 revisits; last 2024-03-01 14:00:00 UTC: up (12 views), by yt-dlp metadata",
    ]
    typed = PostRecord(id=2, media_id=1, url="https://example.org/w", first_seen_at=seen, raw_metadata={})
    assert history_lines(typed, [_obs(seen + H, "removed", error_kind="http-404")])[0] == \
        "removed by 2024-03-01 10:00:00 UTC (http-404)"
    assert history_lines(typed, []) == []
