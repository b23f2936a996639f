"""What kind of watch a URL is, decided offline at `watch add` time.

Rules, first match wins:

1. `t.me/s/NAME` (a public channel's web preview) or `t.me/NAME` → "telegram"
   (`t.me/NAME/123`, one post, is yt-dlp's);
2. YouTube's `/feeds/videos.xml` → "atom" (yt-dlp rejects Atom);
3. a yt-dlp extractor other than Generic accepts the URL → "post" if that
   extractor only ever returns single videos (TikTok video, YouTube watch
   page), else "listing" (channels, users, playlists, and extractors that may
   return either);
4. anything that is not http(s) → `UnsupportedURL`: only the generic extractor
   matches it and the generic extractor only fetches over HTTP;
5. an http(s) URL whose path ends in a video extension → "post", in `.rss` →
   "rss", in `.atom` → "atom";
6. any other http(s) URL → "listing", decided by content at poll time:
   `YtDlpSource.list_items` fetches it once and reads an RSS or Atom feed, a
   Telegram channel page, a direct media file (by Content-Type) or, for any
   other HTML page, yt-dlp's generic extraction (og:video, JSON-LD, embeds).

Finding the extractor of a URL is done for every item a feed lists (its
archive key), and asking each of yt-dlp's ~1,800 extractors in turn costs
20-40 ms a URL: a 5,000-item feed took minutes to list.  `_ExtractorIndex`
reads, once, the literal text each extractor's URL pattern requires
("vimeo.com/", "://t.me/"...) and asks only the extractors whose text the URL
contains, in yt-dlp's order, so the answer is the same (a test compares it
with asking all of them on yt-dlp's own test URLs) at well under a
millisecond a URL.

Reading those ~1,800 patterns took half a second of every `watch add`, so
the conditions are kept in a cache file (`cache_dir()`), named by a hash of
every extractor's name and pattern and of the Python version: a new yt-dlp,
a plugin or another Python gets a fresh file, and an unreadable or
unwritable cache only costs the half second.

Importing yt-dlp itself costs a quarter of a second more, and most URLs
people add (a feed, a news site's page) are ones no extractor takes.  So
beside the cache, a small "light" file keeps every extractor's URL patterns,
named by the installed yt-dlp's files (found without importing it):
`no_platform_extractor` answers from it alone.  Every extractor's `suitable`
requires its pattern to match (a custom `suitable` only narrows it, a test
checks this on yt-dlp's own test URLs), so when no pattern of the candidate
extractors matches, none accepts the URL; when one matches, the full answer
is asked of yt-dlp.  With yt-dlp plugins installed there is no light file
(a plugin's extractors are known only by importing it).
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import os
import posixpath
import re
import sys
import tempfile
import urllib.parse
from pathlib import Path

from monitor.sources.base import UnsupportedURL
from monitor.sources.watch_urls import telegram_channel


@functools.cache
def _extractors() -> tuple[type, ...]:
    from yt_dlp.extractor import gen_extractor_classes  # a slow import, only when a URL is classified

    return tuple(ie for ie in gen_extractor_classes() if ie.ie_key() != "Generic")


@functools.lru_cache(maxsize=4096)
def extractor_for(url: str) -> type | None:
    """The first yt-dlp extractor class other than Generic that accepts `url` (None for a URL none can parse)."""
    try:
        return next((ie for ie in _index().candidates(url) if ie.suitable(url)), None)
    except ValueError:  # an extractor's own URL parsing choked ("http://[broken")
        return None


def extractor_for_by_asking_all(url: str) -> type | None:
    """`extractor_for` the slow way, every extractor in turn: the reference it is tested against."""
    return next((ie for ie in _extractors() if ie.suitable(url)), None)


@functools.cache
def _index() -> _ExtractorIndex:
    extractors = _extractors()
    conditions = cached_conditions(extractors)
    _write_light(extractors, conditions)
    _light_data.cache_clear()  # read again: the file may be new
    _light.cache_clear()
    return _ExtractorIndex(extractors, conditions)


def no_platform_extractor(url: str) -> bool:
    """True when no yt-dlp extractor but Generic accepts `url`, known without importing yt-dlp; False when
    one may (ask `extractor_for`) or the light file is missing (see the module doc)."""
    light = _light()
    if light is None or not url.isascii():
        return False
    index, patterns = light
    for key in index.candidates(url):
        found = patterns.get(key)
        if not found or any(_compiled(p).match(url) for p in found):
            return False
    return True


def video_extensions() -> frozenset[str]:
    """yt-dlp's video file extensions (from the light file when it is there)."""
    light = _light_data()
    if light is not None:
        return frozenset(light["video_extensions"])
    from yt_dlp.utils import MEDIA_EXTENSIONS

    return frozenset(MEDIA_EXTENSIONS.video)


@functools.cache
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _light_path() -> Path | None:
    """The light file for the installed yt-dlp: named by its files' sizes and times, found without importing it."""
    import importlib.util

    spec = importlib.util.find_spec("yt_dlp")
    try:
        plugins = importlib.util.find_spec("yt_dlp_plugins")
    except ModuleNotFoundError:  # yt-dlp's own finder, once it is loaded, when there are none
        plugins = None
    if spec is None or not spec.submodule_search_locations or plugins is not None:
        return None  # not installed, or plugins (their extractors are known only by importing them)
    root = Path(next(iter(spec.submodule_search_locations)))
    stamp = hashlib.sha256(f"{sys.version}\0{os.environ.get('YTDLP_NO_LAZY_EXTRACTORS', '')}".encode())
    for name in ("version.py", "extractor/lazy_extractors.py", "extractor/_extractors.py"):
        try:
            st = (root / name).stat()
        except OSError:
            continue
        stamp.update(f"\0{root / name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return cache_dir() / f"extractor-light-{stamp.hexdigest()[:20]}.json"


@functools.cache
def _light_data() -> dict | None:
    try:
        path = _light_path()
        return json.loads(path.read_text()) if path is not None else None
    except (OSError, ValueError):
        return None


@functools.cache
def _light() -> tuple[_ExtractorIndex, dict[str, list[str]]] | None:
    data = _light_data()
    try:
        keys = tuple(key for key, _ in data["conditions"])
        conditions = {key: _condition_from_json(value) for key, value in data["conditions"]}
        return _ExtractorIndex(keys, conditions), {k: list(v) for k, v in data["patterns"].items()}
    except (TypeError, KeyError, ValueError):
        return None


def _plugin_extractors() -> bool:
    try:
        from yt_dlp.globals import plugin_ies

        return bool(plugin_ies.value)
    except (ImportError, AttributeError):  # an older yt-dlp: plugins unknown, so no light file
        return True


def _write_light(extractors: tuple[type, ...], conditions: dict[type, Condition | None | str]) -> None:
    """Keep the patterns and conditions for `no_platform_extractor` (yt-dlp is loaded now anyway)."""
    from yt_dlp.utils import MEDIA_EXTENSIONS

    path = _light_path()
    if path is None or path.exists() or _plugin_extractors():
        return
    patterns = {}
    for ie in extractors:
        valid = ie._VALID_URL
        patterns[ie.ie_key()] = [valid] if isinstance(valid, str) else \
            list(valid) if isinstance(valid, (list, tuple)) and all(isinstance(p, str) for p in valid) else []
    data = {"conditions": [[ie.ie_key(), [sorted(s) for s in c] if isinstance(c, list) else c]
                           for ie, c in conditions.items()],
            "patterns": patterns, "video_extensions": sorted(MEDIA_EXTENSIONS.video)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
            json.dump(data, out)
        os.replace(out.name, path)
    except OSError:
        pass


Condition = list[set[str]]  # every set must have a member in the (lower-cased) URL


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "provenance"


def cached_conditions(extractors: tuple[type, ...]) -> dict[type, Condition | None | str]:
    """`_url_condition` of each extractor, from the cache file when it has them (see the module doc)."""
    stamp = hashlib.sha256(sys.version.encode())
    for ie in extractors:
        stamp.update(f"\0{ie.ie_key()}\0{ie._VALID_URL!r}\0{'suitable' in vars(ie)}".encode())
    path = cache_dir() / f"extractor-conditions-{stamp.hexdigest()[:20]}.json"
    try:
        stored = json.loads(path.read_text())
        return {ie: _condition_from_json(stored[ie.ie_key()]) for ie in extractors}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    conditions = {ie: _url_condition(ie) for ie in extractors}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as out:
            json.dump({ie.ie_key(): [sorted(s) for s in c] if isinstance(c, list) else c
                       for ie, c in conditions.items()}, out)
        os.replace(out.name, path)
    except OSError:
        pass
    return conditions


def _condition_from_json(value: object) -> Condition | None | str:
    if value is None or value == "never":
        return value
    if not isinstance(value, list) or not all(isinstance(s, list) for s in value):
        raise TypeError(f"not a condition: {value!r}")
    return [set(s) for s in value]


class _ExtractorIndex:
    """The extractors that could accept a URL, from the literal text their patterns require."""

    KEY = 4  # literals are looked up by their first KEY characters

    def __init__(self, extractors: tuple[type, ...],
                 conditions: dict[type, Condition | None | str] | None = None) -> None:
        self.order = {ie: n for n, ie in enumerate(extractors)}
        self.conditions: dict[type, Condition] = {}
        self.always: list[type] = []  # no usable literal: asked for every URL
        self.by_key: dict[str, list[tuple[str, type]]] = collections.defaultdict(list)
        for ie in extractors:
            condition = conditions[ie] if conditions is not None else _url_condition(ie)
            if condition == "never":
                continue
            self.conditions[ie] = condition or []
            best = _most_selective(condition or [])
            if best is None or min(map(len, best)) < self.KEY:
                self.always.append(ie)
            else:
                for literal in best:
                    self.by_key[literal[:self.KEY]].append((literal, ie))

    def candidates(self, url: str) -> list[type]:
        if not url.isascii():  # case folding beyond ASCII: ask everyone
            return list(self.order)
        text = url.lower()
        found = set(self.always)
        for start in range(len(text) - self.KEY + 1):
            for literal, ie in self.by_key.get(text[start:start + self.KEY], ()):
                if text.startswith(literal, start):
                    found.add(ie)
        return [ie for ie in sorted(found, key=self.order.__getitem__)
                if all(any(literal in text for literal in options) for options in self.conditions[ie])]


def _url_condition(ie: type) -> Condition | None | str:
    """What an extractor's URL pattern(s) require: a Condition, None (nothing known) or "never"."""
    patterns = ie._VALID_URL
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, (list, tuple)):  # False: the extractor is only ever called by name
        return None if "suitable" in vars(ie) else "never"
    try:
        from re import _parser  # the standard library's own regex parser
    except ImportError:  # pragma: no cover - a Python without it: no index, ask everyone
        return None
    try:
        conditions = [_required(_parser.parse(pattern)) for pattern in patterns]
    except (re.error, TypeError, ValueError, AttributeError):
        return None
    if len(conditions) == 1:
        return conditions[0]
    alternatives = [_most_selective(c) for c in conditions]
    return [set().union(*alternatives)] if all(alternatives) else None


def _required(items) -> Condition:
    """The literal strings a match of a parsed pattern must contain (lower-cased), as a Condition."""
    from re import _constants as sre

    condition: Condition = []
    run: list[str] = []
    for op, arg in [*items, (None, None)]:
        if op is sre.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            condition.append({"".join(run).lower()})
            run = []
        if op is sre.SUBPATTERN:
            condition += _required(arg[-1])
        elif op is sre.ATOMIC_GROUP:
            condition += _required(arg)
        elif op is sre.BRANCH:
            condition += _any_of([_required(branch) for branch in arg[1]])
        elif op is sre.GROUPREF_EXISTS:
            condition += _any_of([_required(branch) if branch is not None else [] for branch in arg[1:]])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, getattr(sre, "POSSESSIVE_REPEAT", None)) and arg[0] >= 1:
            condition += _required(arg[2])
    return condition


def _any_of(branches: list[Condition]) -> Condition:
    """One of several branches must match: a condition only if every branch has one."""
    picks = [_most_selective(branch) for branch in branches]
    return [set().union(*picks)] if picks and all(picks) else []


def _most_selective(condition: Condition) -> set[str] | None:
    return max(condition, key=lambda options: min(map(len, options)), default=None)


def classify_watch_url(url: str) -> str:
    """One of storage.records.WATCH_KINDS for `url`; raises UnsupportedURL (see module doc)."""
    url = url.strip()
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise UnsupportedURL(f"cannot watch {url!r}: not a URL ({exc})") from exc
    if telegram_channel(url):
        return "telegram"
    host = (parts.hostname or "").removeprefix("www.").removeprefix("m.")
    if host == "youtube.com" and parts.path == "/feeds/videos.xml":
        return "atom"
    if not no_platform_extractor(url) and (ie := extractor_for(url)):
        return "post" if ie.is_single_video(url) else "listing"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsupportedURL(
            f"cannot watch {url!r}: no yt-dlp extractor accepts it and it is not an http(s) URL; "
            "give a post, channel, feed or media URL starting with https://"
        )
    ext = posixpath.splitext(parts.path)[1].lower().lstrip(".")
    if ext in video_extensions():
        return "post"
    if ext in ("rss", "atom"):
        return ext
    return "listing"
