"""Our own reader of feeds and pages, bounded in bytes (also once unpacked), time and redirects.

Feeds and channel pages are fetched by us, not by yt-dlp, because yt-dlp
reads a response whole and unpacks gzip in memory: a 2 MB gzip bomb became
2 GiB before any size check ran.  Here the body is read in small pieces and
unpacked step by step with zlib's `max_length`, so reading stops at
`max_page_bytes` of *unpacked* bytes; a watchdog shuts the socket at the
deadline, so a server dripping a byte a second (in the headers or the body)
cannot hold a poll; redirects stop at `max_redirects`.

Failures are classified here, by exception type and errno, into the kinds
of `monitor.failures` (`network_failure` is shared with the yt-dlp wrapper,
whose exceptions wrap the same socket errors).
"""

from __future__ import annotations

import errno
import http.client
import http.cookiejar
import socket
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

from monitor.failures import SourceError, http_kind
from monitor.limits import Limits, format_size

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Page:
    url: str  # after redirects
    status: int
    headers: Message
    body: bytes  # unpacked; empty for HEAD or when the caller did not want it

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()


def is_http(url: str) -> bool:
    """Whether `url` is an http(s) URL whose host part parses (urlsplit raises on "http://[bad")."""
    try:
        parts = urllib.parse.urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        return False


class Fetcher:
    """GET or HEAD one URL within `limits` (max_page_bytes, max_redirects, a deadline)."""

    def __init__(self, limits: Limits | None = None, *, socket_timeout: float = 30.0, proxy: str | None = None,
                 cookies_file: str | None = None) -> None:
        self.limits = limits or Limits()
        self.socket_timeout = socket_timeout
        self.proxy = proxy
        self.cookies_file = cookies_file

    def get(self, url: str, *, method: str = "GET", max_bytes: int | None = None, deadline: float | None = None,
            want_body: Callable[[Message], bool] | None = None, headers: dict[str, str] | None = None) -> Page:
        """The response to `url`; raises SourceError with its kind for anything else.

        `max_bytes` defaults to max_page_bytes; `deadline` (seconds) to
        item_deadline_seconds.  `want_body(headers)` False skips the body
        (a media file where a page was expected, say).
        """
        if not is_http(url):
            raise SourceError(f"cannot fetch {url!r}: not an http(s) URL", kind="unsupported")
        max_bytes = self.limits.max_page_bytes if max_bytes is None else max_bytes
        seconds = self.limits.item_deadline_seconds if deadline is None else deadline
        watchdog = _Watchdog(seconds)
        request = urllib.request.Request(url, method=method, headers={
            "User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate", **(headers or {})})
        try:
            with watchdog, self._opener(watchdog).open(request, timeout=self.socket_timeout) as response:
                if method == "HEAD" or (want_body is not None and not want_body(response.headers)):
                    body = b""
                else:
                    body = _read_body(response, url, max_bytes, watchdog)
                return Page(response.url, response.status, response.headers, body)
        except SourceError:
            raise
        except urllib.error.HTTPError as exc:
            exc.close()
            if 300 <= exc.code < 400:
                raise SourceError(f"more than {self.limits.max_redirects} redirects (max_redirects) from {url}; "
                                  "a redirect loop?", kind="redirect-loop") from exc
            raise SourceError(f"HTTP {exc.code} {exc.reason or ''}".rstrip() + f" from {url}",
                              kind=http_kind(exc.code)) from exc
        except Exception as exc:
            if watchdog.expired:
                raise SourceError(f"fetching {url} took longer than {seconds:g} s (item_deadline_seconds)",
                                  kind="too-slow") from exc
            if failure := network_failure(exc, url, self.socket_timeout):
                raise SourceError(failure[1], kind=failure[0]) from exc
            if isinstance(exc, (ValueError, http.client.InvalidURL)):  # control characters, a bad port or host...
                raise SourceError(f"cannot fetch {url!r}: {exc}", kind="unsupported") from exc
            if isinstance(exc, (OSError, http.client.HTTPException)):
                raise SourceError(f"fetching {url} failed: {exc or type(exc).__name__}", kind="network") from exc
            raise

    def _opener(self, watchdog: _Watchdog) -> urllib.request.OpenerDirector:
        proxies = {"http": self.proxy, "https": self.proxy} if self.proxy else None
        handlers: list = [urllib.request.ProxyHandler(proxies), _RedirectHandler(self.limits.max_redirects),
                          _WatchedHTTPHandler(watchdog), _WatchedHTTPSHandler(watchdog)]
        if self.cookies_file:
            jar = http.cookiejar.MozillaCookieJar(self.cookies_file)
            jar.load(ignore_discard=True, ignore_expires=True)
            handlers.append(urllib.request.HTTPCookieProcessor(jar))
        return urllib.request.build_opener(*handlers)


def _read_body(response: http.client.HTTPResponse, url: str, max_bytes: int, watchdog: _Watchdog) -> bytes:
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    unpack = _unpacker(encoding, url, max_bytes)
    declared = response.headers.get("Content-Length")
    raw, parts, size = 0, [], 0
    while chunk := response.read1(CHUNK):
        raw += len(chunk)
        if raw > max(max_bytes, 1):  # compressed data that unpacks to little is no excuse either
            raise _too_large(url, max_bytes, "")
        for part in unpack(chunk):
            size += len(part)
            if size > max_bytes:
                raise _too_large(url, max_bytes, " once unpacked" if encoding != "identity" else "")
            parts.append(part)
    if watchdog.expired:
        raise OSError("deadline")  # the watchdog shut the socket: what was read is not the whole body
    if declared and declared.isdigit() and raw < int(declared):
        raise SourceError(f"transfer cut short: got {raw} of {declared} bytes from {url}; "
                          "the server closed the connection early", kind="cut-short")
    parts.extend(unpack(None))
    return b"".join(parts)


def _too_large(url: str, max_bytes: int, how: str) -> SourceError:
    return SourceError(f"{url} is larger than {format_size(max_bytes)}{how} (max_page_bytes); "
                       "not a feed or page we read", kind="too-large")


def _unpacker(encoding: str, url: str, max_bytes: int) -> Callable[[bytes | None], Iterator[bytes]]:
    """A function that unpacks the next raw chunk (None: the end) in pieces of at most max_bytes + 1."""
    if encoding in ("", "identity"):
        return lambda chunk: iter([chunk] if chunk else [])
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise SourceError(f"{url} is sent with Content-Encoding {encoding!r}, which we did not ask for",
                          kind="bad-response")
    state: dict[str, zlib._Decompress] = {}

    def unpack(chunk: bytes | None) -> Iterator[bytes]:
        try:
            if chunk is None:
                if state and not state["z"].eof:
                    raise SourceError(f"the compressed body from {url} ends early", kind="bad-response")
                return
            if not state:  # deflate means the zlib format, but some servers send raw deflate
                zlib_header = len(chunk) > 1 and chunk[0] & 0x0F == 8 and (chunk[0] * 256 + chunk[1]) % 31 == 0
                wbits = (16 + zlib.MAX_WBITS if "gzip" in encoding
                         else zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
                state["z"] = zlib.decompressobj(wbits)
            z = state["z"]
            data = chunk
            while data and not z.eof:
                yield z.decompress(data, max_bytes + 1)
                data = z.unconsumed_tail
        except zlib.error as exc:
            raise SourceError(f"the compressed body from {url} is broken ({exc})", kind="bad-response") from exc

    return unpack


class _Watchdog:
    """Shuts every socket of one fetch down when its deadline passes (a drip cannot outlast it)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _watched(base: type[http.client.HTTPConnection], watchdog: _Watchdog) -> type:
    class Watched(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            watchdog.watch(self.sock)

    return Watched


class _WatchedHTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.connection = _watched(http.client.HTTPConnection, watchdog)

    def http_open(self, req: urllib.request.Request):
        return self.do_open(self.connection, req)


class _WatchedHTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, watchdog: _Watchdog) -> None:
        super().__init__()
        self.connection = _watched(http.client.HTTPSConnection, watchdog)

    def https_open(self, req: urllib.request.Request):
        return self.do_open(self.connection, req, context=self._context)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    def __init__(self, max_redirects: int) -> None:
        super().__init__()
        self.max_redirections = max_redirects

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise SourceError(f"{req.full_url} redirects to a non-http URL; not followed", kind="redirect-loop")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def linked(error: BaseException) -> Iterator[BaseException]:
    """`error` and every exception it wraps (causes, contexts, `.reason`, `.cause`, exceptions in `args`...)."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop(0)
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        exc_info = getattr(exc, "exc_info", None)
        nested = [exc.__cause__, exc.__context__, getattr(exc, "reason", None), getattr(exc, "cause", None),
                  exc_info[1] if isinstance(exc_info, tuple) and len(exc_info) > 1 else None,
                  *(a for a in getattr(exc, "args", ()) if isinstance(a, BaseException)),
                  *(getattr(exc, "unexpected_errors", None) or ())]  # yt-dlp: what each HTTP handler raised
        todo += [n for n in nested if isinstance(n, BaseException)]


_NETWORK_ERRNOS = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.ECONNRESET, errno.ECONNABORTED,
                   errno.EPIPE}


def network_failure(error: BaseException, url: str, socket_timeout: float | None) -> tuple[str, str] | None:
    """(kind, message) when `error` wraps a network failure, by type and errno; None otherwise."""
    chain = list(linked(error))
    host = urllib.parse.urlsplit(url).netloc or url

    def first(test: Callable[[BaseException], bool]) -> BaseException | None:
        return next((e for e in chain if test(e)), None)

    if first(lambda e: isinstance(e, socket.gaierror)):
        return "dns", f"cannot resolve the host name in {url} (DNS lookup failed); check the URL and the network"
    if first(lambda e: isinstance(e, ConnectionRefusedError) or getattr(e, "errno", None) == errno.ECONNREFUSED):
        return "refused", f"connection refused by {host}; is the server up?"
    if first(lambda e: isinstance(e, TimeoutError) or getattr(e, "errno", None) == errno.ETIMEDOUT):
        waited = f" for {socket_timeout:g} s (socket_timeout)" if socket_timeout else ""
        return "timeout", f"{host} sent nothing{waited}; the server stalled"
    if tls := first(lambda e: isinstance(e, (ssl.SSLError, ssl.CertificateError))):
        return "tls", f"TLS failed with {host}: {_first_line(tls)}"
    if cut := first(lambda e: isinstance(e, http.client.IncompleteRead)):
        expected = f" of {len(cut.partial) + cut.expected}" if isinstance(cut.expected, int) else ""
        return "cut-short", (f"transfer cut short: got {len(cut.partial)}{expected} bytes from {url}; "
                             "the server closed the connection early")
    if other := first(lambda e: isinstance(e, (ConnectionError, http.client.RemoteDisconnected))
                      or getattr(e, "errno", None) in _NETWORK_ERRNOS):
        return "network", f"network error with {host}: {_first_line(other)}"
    return None


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
