"""Tracked footage and alerts: recorded after the ingest commits, sent by Apprise to a local webhook, never
failing the ingest; run-once says when a new item matches tracked footage."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monitor.jobs.alerts import track_file, wait_for_deliveries
from monitor.jobs.corrections import Actor
from monitor.jobs.ingest import file_url, ingest_file
from monitor.workspace import Workspace
from storage.records import NewPost
from tests.monitor.test_cli_core import Provenance
from tests.monitor.test_poll import rfc822, site, workspace_config  # noqa: F401 (the site fixture)


class Webhook:
    """A local HTTP server that records the JSON bodies posted to it (what Apprise's json:// sends)."""

    def __init__(self, status: int = 200) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hook.received.append({"path": self.path, "json": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                hook.arrived.set()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.close()


def open_workspace(tmp_path, db_url, **alerts) -> Workspace:
    config = workspace_config(tmp_path / "data", db_url)
    config.raw["alerts"] = {**config.raw["alerts"], **alerts}
    return Workspace.open(config)


def post(url: str) -> NewPost:
    return NewPost(media_id=0, url=url, platform="web")


def test_a_post_matching_tracked_footage_raises_an_alert_sent_to_every_url(database_url, tmp_path, webhook,
                                                                           footage_clips, http_server):
    refused = http_server.refused_url("/nobody")
    ws = open_workspace(tmp_path, database_url, timeout=5,
                        notify=[webhook.url("/newsroom"), refused.replace("http://", "json://"), "nonsense://x"])
    try:
        tracked, first = track_file(ws, Actor("alice", "cli"), footage_clips["original"], "harbour fire")
        assert first.alerts == []  # tracking it raised nothing: it was not tracked yet
        unrelated = ingest_file(ws, footage_clips["unrelated"], post("https://example.org/cat"))
        assert unrelated.alerts == []

        result = ingest_file(ws, footage_clips["mirrored"], post("https://t.me/harbour/7"))

        (alert,) = result.alerts
        assert alert.message == f"new item matches tracked footage 'harbour fire' (post {result.post.id})"
        assert (alert.kind, alert.tracked_id, alert.matched_media_id) == ("tracked", tracked.id, first.media.id)
        assert wait_for_deliveries(30)
        (sent,) = webhook.received
        assert sent["path"] == "/newsroom"
        assert "harbour fire" in sent["json"]["title"] and "https://t.me/harbour/7" in sent["json"]["message"]
        (stored,) = ws.repository.list_alerts()
        assert [(d.target, d.ok) for d in stored.deliveries] == [
            ("json:// (notify #1)", True), ("json:// (notify #2)", False), ("nonsense:// (notify #3)", False)]
        assert stored.deliveries[2].error.startswith("not a notification URL")
        assert str(webhook.port) not in " ".join(d.target for d in stored.deliveries)  # URLs are never stored

        # the same bytes at a new URL are known footage too; the same post again raises nothing
        again = ingest_file(ws, footage_clips["original"], post("https://other.example/copy"))
        assert [a.tracked_id for a in again.alerts] == [tracked.id]
        assert ingest_file(ws, footage_clips["original"], post("https://other.example/copy")).alerts == []
    finally:
        wait_for_deliveries(30)
        ws.close()


def test_any_match_alerts_only_when_asked(tmp_path, footage_clips):
    db = f"sqlite:///{tmp_path / 'p.db'}"
    ws = open_workspace(tmp_path, db, on_any_match=True)
    try:
        ingest_file(ws, footage_clips["original"], post("https://a.example/1"))
        (alert,) = ingest_file(ws, footage_clips["cropped"], post("https://b.example/2")).alerts
        assert alert.kind == "match" and alert.tracked_id is None and "stored footage" in alert.message
        assert ws.repository.list_alerts()[0].deliveries == ()  # no notification URL configured
    finally:
        ws.close()
    ws = open_workspace(tmp_path, db, on_any_match=False)
    try:
        assert ingest_file(ws, footage_clips["mirrored"], post("https://c.example/3")).alerts == []
    finally:
        ws.close()


@pytest.mark.slow
def test_run_once_says_when_a_new_item_matches_tracked_footage(tmp_path, site, footage_clips, webhook):  # noqa: F811
    config = tmp_path / "config.toml"
    config.write_text(f'[alerts]\nnotify = ["{webhook.url()}"]\n')
    prov = Provenance(tmp_path / "data", None)
    prov.base += ["--config", str(config)]
    prov("track", str(footage_clips["original"]), "--label", "pier", "--author", "alice")
    day = rfc822(datetime(2024, 3, 1, 12, tzinfo=UTC))
    feed = site.rss("/feed.rss", [("copy", day, site.file("/copy.mp4", footage_clips["cropped"])),
                                  ("cat", day, site.file("/cat.mp4", footage_clips["unrelated"]))])
    prov("watch", "add", feed, "--label", "Harbour Gazette")

    out = prov("run-once").stdout

    post_id = next(p["id"] for p in prov.json("posts", "--json") if p["url"].endswith("/copy.mp4"))
    assert f"new item matches tracked footage 'pier' (post {post_id}) (alert 1)" in out
    (alert,) = prov.json("alerts", "--unread", "--json")
    assert alert["deliveries"][0]["ok"] is True and webhook.received  # run-once waited for the sending
    prov("alerts", "ack", str(alert["id"]), "--author", "bob")
    assert prov.json("alerts", "--unread", "--json") == []
    assert [t["label"] for t in prov.json("tracked", "--json")] == ["pier"]
    prov("untrack", "1")
    assert prov.json("tracked", "--json") == [] and not prov.json("tracked", "--all", "--json")[0]["active"]
    assert [e["action"] for e in prov.json("audit", "--json")] == ["track.remove", "alert.ack", "track.add"]


def test_ingest_refused_when_the_post_url_was_deleted(tmp_path, footage_clips):
    """Bytes still stored, one of their posts deleted: that post is refused again, others are not."""
    ws = open_workspace(tmp_path, f"sqlite:///{tmp_path / 'p.db'}")
    try:
        from monitor.jobs.corrections import DeletedBytes, delete_post

        ingest_file(ws, footage_clips["original"], post("https://a.example/1"))
        second = ingest_file(ws, footage_clips["original"], post(file_url(footage_clips["original"])))
        delete_post(ws, Actor("alice", "cli"), second.post.id, "typed by mistake")
        with pytest.raises(DeletedBytes, match="typed by mistake"):
            ingest_file(ws, footage_clips["original"], post(file_url(footage_clips["original"])))
        assert ingest_file(ws, footage_clips["original"], post("https://b.example/2")).new_post
    finally:
        ws.close()
