"""Adding a watch: what the URL is, whether it is watched already, whether it lists anything.

`watch add` and the web application's form both come here, so a URL is
judged the same way wherever it is typed:

1. the URL is tidied (`monitor.sources.watch_urls.watch_url`: a bare host
   gets https://, `t.me/NAME` becomes the channel's preview `t.me/s/NAME`);
2. its kind is decided offline (`classify_watch_url`);
3. a watch of the same address (`same_watch_key`: case, www., trailing
   slash, tracking parameters...) is refused, naming the existing one;
4. unless `check=False`, one bounded request looks at what the URL serves
   (`monitor.sources.check`): a page without any video is refused with the
   reason, a network failure is reported as one.

Two processes adding the same address at the same instant can both pass
step 3; the store refuses the second (`store_watch`: each watch keeps its
address key under a unique index, migration 0009), which is reported the
same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from monitor.sources.check import check_watch
from monitor.sources.classify import classify_watch_url
from monitor.sources.watch_urls import same_watch_key, watch_url
from storage import AlreadyExists
from storage.records import WatchRecord

class WatchExists(ValueError):
    """The URL is watched already; `watch` is the existing watch."""

    def __init__(self, url: str, watch: WatchRecord) -> None:
        name = f" ({watch.label})" if watch.label else ""
        same = "" if watch.url == url else f" as {watch.url}"
        super().__init__(f"{url} is watched already{same}: watch {watch.id}{name}; see `provenance watch list`")
        self.watch = watch


@dataclass(frozen=True)
class AddedWatch:
    watch: WatchRecord
    note: str | None = None  # what the check noticed without refusing (an empty feed...)


def find_same_watch(repository, url: str) -> WatchRecord | None:
    """The stored watch of the same address as `url` (see `same_watch_key`), if any."""
    key = same_watch_key(url)
    return next((w for w in repository.list_watches() if same_watch_key(w.url) == key), None)


def prepare_watch(repository, text: str, check: bool = True, fetcher=None) -> tuple[str, str, str | None]:
    """(url to store, kind, note) for what a person typed; raises UnsupportedURL, WatchExists or SourceError.

    `fetcher` (a `monitor.sources.fetch.Fetcher`) is needed when `check`.
    """
    url = watch_url(text)
    kind = classify_watch_url(url)
    if existing := find_same_watch(repository, url):
        raise WatchExists(url, existing)
    note = check_watch(url, kind, fetcher) if check and _is_fetched(url) else None
    return url, kind, note


def add_watch(repository, text: str, interval_seconds: int, label: str | None = None, *, check: bool = True,
              fetcher=None) -> AddedWatch:
    """Judge `text` (see the module doc) and store it as a watch."""
    url, kind, note = prepare_watch(repository, text, check=check, fetcher=fetcher)
    return AddedWatch(store_watch(repository, url, kind, label, interval_seconds), note)


def store_watch(repository, url: str, kind: str, label: str | None, interval_seconds: int) -> WatchRecord:
    """Store a prepared watch under its address key; raises WatchExists when another process stored it first.

    The key is stored as the SHA-256 of `same_watch_key`: a fixed 64 characters, whatever the URL's length
    (PostgreSQL refuses index entries over 8 kB)."""
    key = hashlib.sha256(same_watch_key(url).encode("utf-8", "surrogatepass")).hexdigest()
    try:
        return repository.add_watch(url, kind, label, interval_seconds, key=key)
    except AlreadyExists as error:
        raise WatchExists(url, error.existing) from error


def check_fetcher(config):
    """A Fetcher for the add-time check: [watch] check_seconds bounds the whole look, connection included."""
    import dataclasses

    from monitor.sources.fetch import Fetcher

    seconds = float(config.section("watch")["check_seconds"])
    proxy = str(config.ytdlp.get("proxy") or "")
    return Fetcher(dataclasses.replace(config.limits, item_deadline_seconds=seconds), socket_timeout=seconds,
                   proxy=proxy if proxy.startswith(("http://", "https://")) else None,
                   cookies_file=config.ytdlp.get("cookies_file"))


def _is_fetched(url: str) -> bool:
    """Whether the check fetches `url`: not for URLs a platform extractor reads (see `monitor.sources.check`)."""
    from monitor.sources.classify import extractor_for, no_platform_extractor

    return no_platform_extractor(url) or extractor_for(url) is None
