"""The web application: the same jobs as the command line, as server-rendered pages for a team.

Starlette (a small ASGI toolkit: routing, forms, signed-cookie sessions, no
framework on top) with Jinja2 templates, served by uvicorn.  No JavaScript
build: pages are plain HTML forms; one small script (static/upload.js) lets
people drop a file on the query form, which works without it too.

Long work (a query, a poll, tracking, an export, a deletion) runs in a worker
thread, one at a time (`HEAVY`): the event loop keeps serving pages, and the
workspace's frame index and exiftool process are never used by two jobs at
once.  Database reads run in the thread pool too.

Roles (see `monitor.jobs.accounts`): a `viewer` reads, queries and exports;
an `editor` also changes (watches, claims, merges, tracking, alerts); an
`admin` also deletes and manages accounts.  Every change is written to the
`audit` table with the account that made it.  Security measures are in
`monitor.web.security`.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import anyio
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from monitor.jobs.accounts import ADMIN, EDITOR, VIEWER, may, session_stamp, verify_login
from monitor.jobs.corrections import VIA_WEB, Actor
from monitor.reports.words import clickable, shown
from monitor.web import pages
from monitor.web.queries import QueryResults
from monitor.web.security import (BodyLimit, LoginThrottle, SecurityHeaders, csrf_ok, is_loopback, new_csrf_token,
                                  same_origin, secret_key)
from monitor.workspace import Workspace

log = logging.getLogger("provenance.web")

HEAVY = anyio.CapacityLimiter(1)  # one long job at a time (the frame index and exiftool are shared)
LOCAL = "local"  # the actor's name before any account exists (loopback only)
SESSION_COOKIE = "provenance_session"


@dataclass(frozen=True)
class Principal:
    """Who is asking: an account, or the local user of a server without accounts."""

    name: str
    role: str
    user_id: int | None

    @property
    def actor(self) -> Actor:
        return Actor(self.name, VIA_WEB)

    def may(self, role: str) -> bool:
        return may(self.role, role)


class Web:
    """What every page needs: the workspace, the templates, query results, login throttling."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self.queries = QueryResults(ws.config.data_dir)
        self.throttle = LoginThrottle()
        self.settings = ws.config.section("web")

    async def read(self, fn: Callable, *args: Any) -> Any:
        """A short database read, off the event loop."""
        return await anyio.to_thread.run_sync(lambda: fn(*args))

    async def heavy(self, fn: Callable, *args: Any) -> Any:
        """Long work, off the event loop and one at a time."""
        return await anyio.to_thread.run_sync(lambda: fn(*args), limiter=HEAVY)

    def _principal(self, user_id: Any, stamp: Any, client: str | None) -> Principal | None:
        repo = self.ws.repository
        if repo.count_users() == 0:
            return Principal(LOCAL, ADMIN, None) if is_loopback(client) else None
        if not isinstance(user_id, int):
            return None
        user = repo.get_user(user_id)
        if user is None or stamp != session_stamp(self.ws, user.id):
            return None
        return Principal(user.name, user.role, user.id)

    async def principal(self, request: Request) -> Principal | None:
        session = request.session
        return await self.read(self._principal, session.get("uid"), session.get("stamp"),
                               request.client.host if request.client else None)

    def render(self, request: Request, template: str, principal: Principal | None, status: int = 200,
               **values: Any) -> HTMLResponse:
        if "csrf" not in request.session:
            request.session["csrf"] = new_csrf_token()
        flash = request.session.pop("flash", None)
        body = templates().get_template(template).render(
            principal=principal, csrf=request.session["csrf"], flash=flash, path=request.url.path,
            accounts=principal is not None and principal.user_id is not None, EDITOR=EDITOR, ADMIN=ADMIN,
            **values)
        return HTMLResponse(body, status_code=status)


@cache
def templates() -> Environment:
    env = Environment(loader=PackageLoader("monitor.web", "templates"), autoescape=True, undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(shown=shown, when=lambda at: at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "",
                       day=lambda at: at.strftime("%Y-%m-%d") if at else "", query=urlencode, quote=quote)
    env.tests.update(clickable=clickable)
    return env


Handler = Callable[[Request, Web, Principal, FormData | None], Awaitable[Response]]


def page(role: str | None = VIEWER) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """A route that needs `role` (None: anyone); a POST also needs the session's CSRF token."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            web: Web = request.app.state.web
            principal = await web.principal(request)
            if role is not None:
                if principal is None:
                    if request.method == "GET":
                        return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)
                    return web.render(request, "message.html.j2", None, status=403,
                                      title="Log in first", message="Log in to do that.")
                if not principal.may(role):
                    return web.render(request, "message.html.j2", principal, status=403, title="Not allowed",
                                      message=f"Your role ({principal.role}) cannot do this; it needs {role}.")
            form = None
            if request.method == "POST":
                if not same_origin(request.headers, request.url.scheme, request.headers.get("host", "")):
                    return web.render(request, "message.html.j2", principal, status=403, title="Refused",
                                      message="This form was sent from another site.")
                form = await request.form(max_files=1, max_fields=50)
                if not csrf_ok(request.session.get("csrf"), form.get("csrf")):
                    await _close_uploads(form)
                    return web.render(request, "message.html.j2", principal, status=403, title="Refused",
                                      message="The form had expired or did not come from this site: reload the "
                                              "page and send it again.")
            try:
                return await handler(request, web, principal, form)
            finally:
                if form is not None:
                    await _close_uploads(form)

        endpoint.__name__ = handler.__name__
        return endpoint

    return wrap


async def _close_uploads(form: FormData) -> None:
    for value in form.values():
        if isinstance(value, UploadFile):
            await value.close()


def flash(request: Request, message: str, to: str) -> RedirectResponse:
    request.session["flash"] = message
    return RedirectResponse(to, status_code=303)


# --- login ---------------------------------------------------------------------------------


@page(role=None)
async def login_form(request: Request, web: Web, principal: Principal | None, form: FormData | None) -> Response:
    return web.render(request, "login.html.j2", principal, next=_next(request.query_params.get("next")), error=None)


_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*")


def _next(target: object) -> str:
    """Where to go after logging in: a path on this site only (never `//host` or `/\\host`)."""
    return target if isinstance(target, str) and _LOCAL_PATH.fullmatch(target) else "/"


@page(role=None)
async def login(request: Request, web: Web, principal: Principal | None, form: FormData) -> Response:
    name, password = str(form.get("name", "")).strip(), str(form.get("password", ""))
    if web.throttle.locked(name):
        return web.render(request, "login.html.j2", None, status=429, next=_next(form.get("next")),
                          error="Too many failed logins for this name: wait a quarter of an hour.")
    user = await web.read(verify_login, web.ws, name, password)
    if user is None:
        web.throttle.failed(name)
        log.warning("failed login name=%s client=%s", shown(name)[:64], request.client.host if request.client else "")
        return web.render(request, "login.html.j2", None, status=401, next=_next(form.get("next")),
                          error="Wrong name or password.")
    web.throttle.succeeded(name)
    stamp = await web.read(session_stamp, web.ws, user.id)
    request.session.clear()  # a new session at login: nothing carried over from before
    request.session.update({"uid": user.id, "stamp": stamp, "csrf": new_csrf_token()})
    return RedirectResponse(_next(form.get("next")), status_code=303)


@page(role=VIEWER)
async def logout(request: Request, web: Web, principal: Principal, form: FormData) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


# --- the report of a query ---------------------------------------------------------------


@page(role=VIEWER)
async def query_report(request: Request, web: Web, principal: Principal, form: FormData | None) -> Response:
    """The HTML report itself, for the sandboxed frame of the query page (its own CSP, no script, no fetch)."""
    from monitor.reports.html import CSP as REPORT_CSP

    result = web.queries.get(request.path_params["token"], principal.name, principal.may(ADMIN))
    if result is None:
        return Response("no such query (it may have expired)", status_code=404, media_type="text/plain")
    return FileResponse(result.report_html, media_type="text/html; charset=utf-8", content_disposition_type="inline",
                        headers={"Content-Security-Policy": f"{REPORT_CSP}; sandbox; frame-ancestors 'self'",
                                 "X-Frame-Options": "SAMEORIGIN"})


@page(role=VIEWER)
async def query_export(request: Request, web: Web, principal: Principal, form: FormData) -> Response:
    """An evidence bundle of a query's report (`monitor.jobs.export`) as a ZIP download."""
    from monitor.jobs.export import ExportError, export_bundle

    result = web.queries.get(request.path_params["token"], principal.name, principal.may(ADMIN))
    if result is None:
        return flash(request, "That query has expired: run it again.", "/")
    staging = Path(tempfile.mkdtemp(prefix="export-", dir=result.directory))
    target = staging / "evidence.zip"
    include_media = form.get("media") != "no"
    try:
        await web.heavy(lambda: export_bundle(web.ws, result.report, target, include_media=include_media))
    except ExportError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        return flash(request, f"Export failed: {exc}", f"/query/{result.token}")
    name = f"evidence-{result.report.query_sha256[:12]}.zip"
    return FileResponse(target, media_type="application/zip", filename=name,
                        background=BackgroundTask(shutil.rmtree, staging, ignore_errors=True))


def create_app(ws: Workspace) -> Starlette:
    """The application over an open workspace (the caller closes it)."""
    settings = ws.config.section("web")
    secret_file = Path(settings["secret_file"]).expanduser() if settings["secret_file"] else \
        ws.config.data_dir / "web" / "session-secret"
    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/query/{token}/report", query_report, methods=["GET"]),
        Route("/query/{token}/export", query_export, methods=["POST"]),
        *pages.routes(page, flash),
        Mount("/static", StaticFiles(packages=[("monitor.web", "static")]), name="static"),
    ]
    middleware = [
        Middleware(SecurityHeaders),
        Middleware(BodyLimit, max_bytes=int(settings["max_upload_mb"]) << 20),
        Middleware(SessionMiddleware, secret_key=secret_key(secret_file), session_cookie=SESSION_COOKIE,
                   max_age=int(float(settings["session_hours"]) * 3600), same_site="lax",
                   https_only=bool(settings["https"])),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.web = Web(ws)
    return app
