"""Showing untrusted text (file names, titles, URLs) on a terminal, safely."""

from __future__ import annotations

from pathlib import Path


def shown(text: str | Path) -> str:
    """A name safe to print on one line: control characters are escaped."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in str(text))


def shown_markup(text: str | Path) -> str:
    """`shown(text)` for rich's console markup: a "[/]" or "[link=...]" in it stays text."""
    from rich.markup import escape

    return escape(shown(text))
