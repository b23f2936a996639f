"""What keeps the web application safe to open to a team: sessions, CSRF tokens, roles, headers, body limits.

- Sessions are signed cookies (Starlette's SessionMiddleware over
  itsdangerous: HttpOnly, SameSite=Lax, Secure with `[web] https`, expiring
  after `[web] session_hours`).  A session carries the user id and a digest
  of the user's password hash, checked on every request: a removed account or
  a new password ends every earlier session.  Logging in starts a new session
  (no fixation).
- Every POST form carries the session's CSRF token (`csrf`), compared in
  constant time; a request whose Origin is another site (or "null") is refused as well.  Pages send
  their address to this site only (Referrer-Policy same-origin), so browsers do send the Origin.
- Every response carries a Content-Security-Policy that allows scripts,
  styles and images from this server only, frames from itself (the embedded
  report), forms that post to itself, and no framing by others.
- Request bodies are limited to `[web] max_upload_mb` while they stream in,
  before any of it is parsed or stored.
- Before any account exists the application serves loopback clients only.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import threading
import time
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
           "X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin"}
LOGIN_FAILURES = 5  # failed logins for one name ...
LOGIN_WINDOW = 15 * 60  # ... within this many seconds lock it for as long


def secret_key(path: Path) -> str:
    """The key that signs session cookies: made once, readable by its owner only, shared by every process."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path.read_text().strip()


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(session_token: str | None, sent: str | None) -> bool:
    return bool(session_token) and bool(sent) and secrets.compare_digest(str(session_token), str(sent))


def same_origin(headers: Headers, scheme: str, host: str) -> bool:
    """False when the browser says the request comes from another site (Origin), True otherwise."""
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return origin.rstrip("/") == f"{scheme}://{host}"


class LoginThrottle:
    """Too many failed logins for one name lock it for a while (per process, in memory)."""

    def __init__(self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW) -> None:
        self.failures, self.window = failures, window
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> list[float]:
        return [t for t in self._seen.get(name, []) if now - t < self.window]

    def locked(self, name: str) -> bool:
        with self._lock:
            return len(self._recent(name, time.monotonic())) >= self.failures

    def failed(self, name: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._seen[name] = self._recent(name, now) + [now]

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._seen.pop(name, None)


class SecurityHeaders:
    """Adds `HEADERS` to every response that does not set its own policy (the embedded report does)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k.lower().encode(), v.encode()) for k, v in HEADERS.items() if k.lower().encode() not in present]
            await send(message)

        await self.app(scope, receive, with_headers)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses a request body over `max_bytes` (413) as it streams in, declared or not."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        too_large = PlainTextResponse(f"request too large: at most {self.max_bytes // (1 << 20)} MB "
                                      "([web] max_upload_mb)", status_code=413)
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracking)
        except _TooLarge:
            if not started:
                await too_large(scope, receive, send)
