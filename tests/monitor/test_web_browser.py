"""The acceptance session of the web application, in headless Chromium (Playwright driving Debian's chromium).

An admin logs in, adds a feed watch on a local site and polls it, drops a
re-upload and reads its report, tracks it, exports the evidence bundle, polls
the feed again when it offers another re-upload, and sees the alert (which a
local webhook receives through Apprise).  Then: a logged-out browser sees
nothing, and a read-only user is offered no change and has every change refused.
"""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.web.app import create_app
from monitor.workspace import Workspace
from tests.monitor.test_alerts import Webhook
from tests.monitor.test_cli_core import Provenance
from tests.monitor.test_poll import rfc822, site, workspace_config  # noqa: F401 (the site fixture)
from tests.monitor.test_reports import _chromium

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
WAIT_SECONDS = 30  # a bound on waiting for the server to start or stop, never an expectation of speed


class Server:
    """`create_app` served by uvicorn in a thread, on a port of 127.0.0.1 chosen by the system."""

    def __init__(self, ws: Workspace) -> None:
        import uvicorn

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(ws), log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + WAIT_SECONDS
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the web server did not start"
            time.sleep(0.02)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_SECONDS)
        self.socket.close()


@pytest.fixture
def browser():
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def flash(page) -> str:
    return page.locator(".flash").inner_text()


def log_in(page, base: str, name: str, password: str) -> None:
    page.goto(base + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")


@pytest.mark.slow
def test_acceptance_session_in_a_browser(tmp_path, site, footage_clips, browser):  # noqa: F811
    webhook = Webhook()
    config_file = tmp_path / "config.toml"
    config_file.write_text(f'[alerts]\nnotify = ["{webhook.url("/desk")}"]\n')
    prov = Provenance(tmp_path / "data", None)
    prov.base += ["--config", str(config_file)]
    for name, role in (("ada", "admin"), ("vic", "viewer")):  # the password on standard input
        added = CliRunner().invoke(cli, [*prov.base, "users", "add", name, "--role", role],
                                   input=f"{name}'s long password\n")
        assert added.exit_code == 0, added.output
    day = rfc822(datetime(2024, 3, 1, 9, 30, tzinfo=UTC))
    original = site.file("/original.mp4", footage_clips["original"])
    feed = site.rss("/feed.rss", [("Harbour fire", day, original)])
    config = workspace_config(prov.data_dir, None)
    config.source = config_file
    config.raw["alerts"] = {**config.raw["alerts"], "notify": [webhook.url("/desk")]}
    ws = Workspace.open(config)
    server = Server(ws)
    base = server.url
    try:
        page = browser.new_page(accept_downloads=True)
        log_in(page, base, "ada", "ada's long password")

        # add a feed watch and poll it
        page.click("text=Watches")
        page.fill("form[action='/watches'] input[name=url]", feed)
        page.fill("form[action='/watches'] input[name=label]", "Harbour Gazette")
        page.click("text=Add watch")
        assert flash(page) == "Watch 1 added (rss)."
        page.click("text=Poll now")
        assert flash(page) == "Watch 1: 1 listed, 1 new, 0 failed."
        assert "Harbour Gazette" in page.inner_text("table")

        # drop a re-upload and read its report
        page.click("text=Query")
        page.set_input_files("#video", str(footage_clips["mirrored"]))
        page.click("text=Find the earliest appearance")
        assert flash(page) == "1 appearance(s) found."
        assert original in page.inner_text("main")
        report = page.frame_locator("iframe.report")
        assert "mirrored" in report.locator("body").inner_text()
        assert original in report.locator("body").inner_text()

        # export the evidence bundle
        with page.expect_download() as download:
            page.click("text=Export evidence bundle (ZIP)")
        bundle = zipfile.ZipFile(io.BytesIO(download.value.path().read_bytes()))
        assert {"manifest.json", "report.html", "report.json"} <= set(bundle.namelist())

        # track it
        page.fill("input[name=label]", "harbour fire")
        page.click("text=Track this footage")
        assert flash(page).startswith("Tracking 'harbour fire'")

        # the feed now offers another re-upload: polling it raises the alert
        cropped = site.file("/cropped.mp4", footage_clips["cropped"])
        site.rss("/feed.rss", [("Harbour fire (reposted)", day, cropped), ("Harbour fire", day, original)])
        page.click("text=Watches")
        page.click("text=Poll now")
        assert "new item matches tracked footage 'harbour fire'" in flash(page)
        page.click("text=Alerts")
        row = page.locator("tr.alert").first.inner_text()
        assert "new item matches tracked footage 'harbour fire'" in row and cropped in row
        deadline = time.monotonic() + WAIT_SECONDS
        while "sent to json://" not in page.locator("tr.alert").first.inner_text() and time.monotonic() < deadline:
            page.reload()
        assert "sent to json:// (notify #1)" in page.locator("tr.alert").first.inner_text()
        (received,) = webhook.received
        assert received["path"] == "/desk" and "harbour fire" in received["json"]["title"]
        assert cropped in received["json"]["message"]
        trail = page.goto(base + "/audit") and page.inner_text("table")
        assert "ada" in trail and "watch.add" in trail and "track.add" in trail and "watch.poll" in trail

        # logged out: nothing to see
        stranger = browser.new_page()
        for path in ("/", "/alerts", "/posts", "/watches", "/tracked", "/audit"):
            stranger.goto(base + path)
            assert stranger.url.startswith(base + "/login"), path
            assert "harbour" not in stranger.content().lower()
        answer = stranger.request.post(base + "/watches", form={"url": feed})
        assert answer.status == 403

        # read-only: sees everything, is offered no change, and every change is refused
        viewer = browser.new_page()
        log_in(viewer, base, "vic", "vic's long password")
        viewer.goto(base + "/watches")
        assert "Harbour Gazette" in viewer.inner_text("table")
        assert viewer.locator("text=Poll now").count() == 0 and viewer.locator("text=Add watch").count() == 0
        viewer.goto(base + "/alerts")
        assert viewer.locator("text=Mark read").count() == 0
        token = viewer.locator("input[name=csrf]").first.get_attribute("value")
        audit_before = len(ws.repository.list_audit(1000))
        for path in ("/watches/1/poll", "/watches/1/pause", "/alerts/1/ack", "/tracked/1/untrack", "/posts/1/delete"):
            assert viewer.request.post(base + path, form={"csrf": token, "reason": "x"}).status == 403, path
        assert len(ws.repository.list_audit(1000)) == audit_before
        assert ws.repository.list_watches()[0].enabled
    finally:
        server.close()
        ws.close()
        webhook.close()
