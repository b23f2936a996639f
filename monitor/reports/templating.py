"""The Jinja2 environments of the Markdown and HTML reports: stored text is escaped by default in both.

HTML is autoescaped by Jinja.  Markdown has no autoescaping of its own, so
every value a Markdown template prints goes through `md_escape` unless it is
`Markup` (text a filter here has already made safe): HTML special characters
become entities and Markdown syntax characters are backslash-escaped, so a
title like `[x](javascript:...)` or `<img onerror=...>` stays text.

Both environments offer the report's words (`monitor.reports.words`, the
observation history) as globals, so every format says a thing the same way.
"""

from __future__ import annotations

import re
from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from monitor.reports import words
from monitor.reports.observations import history_lines
from monitor.reports.words import clickable, shown

_WORDS = {"claim_text": words.claim_text, "confidence_text": words.confidence_text, "flags_text": words.flags_text,
          "iso": words.iso, "match_text": words.match_text, "seconds": words.seconds, "when": words.when,
          "history_lines": history_lines, "user_claim_lines": words.user_claim_lines, "where_text": words.where_text}

# Characters that start Markdown syntax mid-line: emphasis, code, links and images, tables, e-mail autolinks.
# (Stored text never starts a line, so heading and list markers need no escape.)
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()!|~@])")


def md_escape(value: object) -> str:
    """Stored text as inert Markdown on one line: controls escaped, HTML as entities, syntax backslashed."""
    text = shown(str(value))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_finalize(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, Markup | int | float):
        return value
    return md_escape(value)


def md_link(url: str | None) -> Markup:
    """An http(s) URL as a Markdown autolink; any other URL as escaped text, not a link."""
    if url and clickable(url):
        return Markup(f"<{url}>")
    return Markup(md_escape(url or ""))


def md_code(value: object) -> Markup:
    """A value of ours with no backticks (hashes, numbers) as inline code."""
    text = str(value)
    if "`" in text or "\n" in text:
        raise ValueError(f"not code-safe: {text!r}")
    return Markup(f"`{text}`")


@cache
def markdown_env() -> Environment:
    env = Environment(loader=PackageLoader("monitor.reports", "templates"), autoescape=False,
                      finalize=_md_finalize, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      keep_trailing_newline=True)
    env.filters.update(link=md_link, code=md_code)
    env.globals.update(_WORDS)
    return env


@cache
def html_env() -> Environment:
    env = Environment(loader=PackageLoader("monitor.reports", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(shown=shown)
    env.tests.update(clickable=clickable)
    env.globals.update(_WORDS)
    return env
