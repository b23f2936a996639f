"""The web application's guards, in-process (Starlette's test client): logins, roles, CSRF, origins, headers,
cookies, upload limits, stored text that tries to run, and the accounts commands."""

from __future__ import annotations

import re
import shutil
import warnings

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.web.app import create_app
from monitor.workspace import Workspace
from storage.records import NewPost
from tests.monitor.test_poll import workspace_config
from tests.storage.test_repository import new_media

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette suggests httpx2 for its test client
    from starlette.testclient import TestClient

BASE = "http://127.0.0.1:8765"
PASSWORDS = {"admin": "admin-password-1", "editor": "editor-password-1", "viewer": "viewer-password-1"}
HOSTILE = "<script>alert('title')</script><img src=x onerror=alert(1)>"
GET_PAGES = ["/", "/watches", "/posts", "/posts/{post}", "/media/{sha}", "/footage", "/tracked", "/alerts", "/audit",
             "/users"]
CHANGES = ["/watches", "/watches/{watch}/pause", "/watches/{watch}/resume", "/watches/{watch}/poll",
           "/posts/{post}/claim", "/posts/{post}/merge", "/posts/{post}/delete", "/media/{sha}/delete",
           "/tracked/1/untrack", "/alerts/1/ack", "/users", "/users/admin/remove"]


@pytest.fixture
def ws(tmp_path, _sqlite_template):
    shutil.copyfile(_sqlite_template, tmp_path / "p.db")  # migrated already
    config = workspace_config(tmp_path / "data", f"sqlite:///{tmp_path / 'p.db'}")
    config.raw["web"] = {**config.raw["web"], "max_upload_mb": 1}
    ws = Workspace.open(config)
    yield ws
    ws.close()


@pytest.fixture
def stored(ws) -> dict:
    media = ws.repository.add_media(new_media(7))
    post = ws.repository.add_post(NewPost(media_id=media.id, url="javascript:alert(document.cookie)",
                                          title=HOSTILE, uploader="<b>bold</b>"))
    watch = ws.repository.add_watch("https://news.example/feed.rss", "rss", "Gazette")
    return {"post": post.id, "sha": media.sha256, "watch": watch.id}


@pytest.fixture(scope="module")
def password_hashes() -> dict[str, str]:
    from monitor.jobs.accounts import _hasher

    return {name: _hasher().hash(password) for name, password in PASSWORDS.items()}


@pytest.fixture
def accounts(ws, password_hashes) -> None:
    """One account per role (named after it), with hashes made once: Argon2 is slow on purpose."""
    for role, hashed in password_hashes.items():
        ws.repository.add_user(role, hashed, role, "root")


def client(ws, host: str = "127.0.0.1") -> TestClient:
    return TestClient(create_app(ws), base_url=BASE, client=(host, 50000), follow_redirects=False)


def csrf_of(page: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page)[1]


def log_in(c: TestClient, name: str) -> TestClient:
    token = csrf_of(c.get("/login").text)
    answer = c.post("/login", data={"csrf": token, "name": name, "password": PASSWORDS[name], "next": "/"})
    assert answer.status_code == 303, answer.text
    return c


def paths(templates: list[str], stored: dict) -> list[str]:
    return [t.format(**stored) for t in templates]


def changes_recorded(ws) -> tuple:
    repo = ws.repository
    return (len(repo.list_audit(1000)), len(repo.list_watches()), repo.count_posts(), repo.count_users(),
            [w.enabled for w in repo.list_watches()])


def test_logged_out_sees_nothing_and_changes_nothing(ws, stored, accounts):
    c = client(ws)
    before = changes_recorded(ws)
    for path in paths(GET_PAGES, stored):
        answer = c.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path
        assert "Gazette" not in answer.text and "alert(" not in answer.text
    for path in paths(CHANGES, stored) + ["/query"]:
        token = csrf_of(c.get("/login").text)  # even with a valid token of the anonymous session
        answer = c.post(path, data={"csrf": token, "url": "https://x.example/feed.rss", "reason": "r",
                                    "published_at": "2024-01-01", "name": "eve", "role": "admin",
                                    "password": "x" * 12, "password_again": "x" * 12})
        assert answer.status_code == 403, path
        assert "Gazette" not in answer.text
    assert changes_recorded(ws) == before


def test_a_viewer_reads_everything_and_can_change_nothing(ws, stored, accounts):
    c = log_in(client(ws), "viewer")
    for path in paths(GET_PAGES[:-1], stored):
        page = c.get(path)
        assert page.status_code == 200, path
        assert not re.search(r'action="/(watches|posts/\d+/|media/|tracked/|alerts/\d|users)', page.text), path
    assert "Gazette" in c.get("/watches").text
    assert c.get("/users").status_code == 403
    before = changes_recorded(ws)
    token = csrf_of(c.get("/").text)
    for path in paths(CHANGES, stored):
        answer = c.post(path, data={"csrf": token, "url": "https://x.example/feed.rss", "reason": "r",
                                    "published_at": "2024-01-01", "into": "1", "name": "eve", "role": "admin",
                                    "password": "x" * 12, "password_again": "x" * 12})
        assert answer.status_code == 403, path
    assert changes_recorded(ws) == before


def test_changes_need_the_sessions_token_and_this_site_and_are_audited(ws, stored, accounts, http_server):
    c = log_in(client(ws), "editor")
    token = csrf_of(c.get("/watches").text)
    feed = http_server.add_template("/web-other.rss", '<rss version="2.0"><channel><title>Other</title>'
                                    "</channel></rss>", "application/rss+xml")
    form = {"url": feed, "label": "Other", "every": "1h"}
    assert c.post("/watches", data=form).status_code == 403  # no token
    assert c.post("/watches", data={**form, "csrf": "forged"}).status_code == 403
    assert c.post("/watches", data={**form, "csrf": token}, headers={"Origin": "https://evil.example"}) \
        .status_code == 403
    assert len(ws.repository.list_watches()) == 1
    answer = c.post("/watches", data={**form, "csrf": token}, headers={"Origin": BASE})
    assert answer.status_code == 303
    assert "Watch 2 added (rss). the feed at" in c.get("/watches").text  # with the check's note: no items yet
    c.post("/watches", data={**form, "csrf": token}, headers={"Origin": BASE})
    assert f"{feed} is watched already: watch 2 (Other)" in c.get("/watches").text
    c.post(f"/posts/{stored['post']}/claim", data={"csrf": token, "published_at": "2024-03-01T10:00:00Z",
                                                   "reason": "seen on the wire", "correction": "1"})
    assert c.post(f"/posts/{stored['post']}/delete", data={"csrf": token, "reason": "x"}).status_code == 403
    (claim,) = ws.repository.claims_for_posts([stored["post"]])[stored["post"]]
    assert (claim.author, claim.correction) == ("editor", True)
    assert [(e.actor, e.via, e.action) for e in ws.repository.list_audit()[:2]] == [
        ("editor", "web", "claim.add"), ("editor", "web", "watch.add")]


def test_sessions_cookies_and_headers(ws, stored, accounts, tmp_path):
    c = client(ws)
    token = csrf_of(c.get("/login").text)
    answer = c.post("/login", data={"csrf": token, "name": "admin", "password": PASSWORDS["admin"], "next": "/"})
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    page = c.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert csrf_of(page.text) != token  # a new session at login
    # a removed account's sessions end at once
    ws.repository.remove_user("admin")
    assert c.get("/").status_code == 303
    # behind https, cookies are Secure
    ws.config.raw["web"] = {**ws.config.raw["web"], "https": True}
    secure = client(ws)
    token = csrf_of(secure.get("/login").text)
    answer = secure.post("/login", data={"csrf": token, "name": "viewer", "password": PASSWORDS["viewer"]})
    assert "secure" in answer.headers["set-cookie"].lower()


def test_wrong_passwords_are_throttled(ws, accounts):
    c = client(ws)
    for _ in range(5):
        token = csrf_of(c.get("/login").text)
        assert c.post("/login", data={"csrf": token, "name": "editor", "password": "wrong"}).status_code == 401
    token = csrf_of(c.get("/login").text)
    assert c.post("/login", data={"csrf": token, "name": "editor", "password": PASSWORDS["editor"]}) \
        .status_code == 429


def test_stored_text_stays_text(ws, stored, accounts):
    c = log_in(client(ws), "viewer")
    for path in (f"/posts/{stored['post']}", "/posts", f"/media/{stored['sha']}"):
        page = c.get(path).text
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold" not in page
        assert 'href="javascript:' not in page
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in c.get(f"/posts/{stored['post']}").text


def test_without_accounts_only_this_machine_is_served(ws, stored, tmp_path):
    assert client(ws).get("/").status_code == 200
    assert "No accounts yet" in client(ws).get("/").text
    assert client(ws, host="192.0.2.7").get("/").status_code == 303
    runner = CliRunner()
    base = ["--data-dir", str(ws.config.data_dir), "--db", ws.repository.database.url]
    refused = runner.invoke(cli, [*base, "web", "--host", "0.0.0.0"])
    assert refused.exit_code == 1 and "users add" in refused.output


def test_uploads_over_the_limit_are_refused(ws, accounts):
    c = log_in(client(ws), "viewer")
    token = csrf_of(c.get("/").text)
    answer = c.post("/query", data={"csrf": token}, files={"video": ("big.mp4", b"\0" * (3 << 20), "video/mp4")})
    assert answer.status_code == 413
    assert not any((ws.config.data_dir / "web" / "queries").iterdir())


def test_users_commands_read_the_password_from_stdin(ws):
    runner = CliRunner()
    base = ["--data-dir", str(ws.config.data_dir), "--db", ws.repository.database.url]
    added = runner.invoke(cli, [*base, "users", "add", "alice", "--role", "editor"], input="a long password\n")
    assert added.exit_code == 0, added.output
    short = runner.invoke(cli, [*base, "users", "add", "bob", "--role", "viewer"], input="short\n")
    assert short.exit_code == 2 and "at least 10" in short.output
    listed = runner.invoke(cli, [*base, "users", "list", "--json"])
    assert '"name": "alice"' in listed.output and "password" not in listed.output
    assert ws.repository.password_hash(ws.repository.user_named("alice").id).startswith("$argon2id$")
    assert runner.invoke(cli, [*base, "users", "remove", "alice"]).exit_code == 0
    assert [e.action for e in ws.repository.list_audit()] == ["user.remove", "user.add"]


def test_after_login_only_paths_of_this_site(ws, accounts):
    for given, expected in (("/posts?text=fire", "/posts?text=fire"), ("//evil.example/x", "/"),
                            ("/\\evil.example", "/"), ("https://evil.example/", "/")):
        c = client(ws)
        token = csrf_of(c.get("/login").text)
        answer = c.post("/login", data={"csrf": token, "name": "viewer", "password": PASSWORDS["viewer"],
                                        "next": given})
        assert answer.headers["location"] == expected, given
