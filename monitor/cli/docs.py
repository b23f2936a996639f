"""Render the CLI reference (docs/cli.md) from the click commands themselves.

The reference is generated, and tests/test_docs.py fails when the committed
file differs from what this prints, so the docs cannot drift from the code.
Regenerate with: python -m monitor.cli.docs > docs/cli.md
"""

from __future__ import annotations

import click

from monitor.cli.main import cli


def _walk(command: click.Command, name: str, parent: click.Context | None):
    """Each command with a context made the way click makes it (settings pass from parent to child)."""
    settings = {**(cli.context_settings if parent is None else {}), "terminal_width": 100, "max_content_width": 100}
    ctx = click.Context(command, info_name=name, parent=parent, **settings)
    yield ctx
    if isinstance(command, click.Group):
        for sub in sorted(command.commands):
            yield from _walk(command.commands[sub], sub, ctx)


def render() -> str:
    lines = ["# CLI reference", "",
             "Generated from the code by `python -m monitor.cli.docs > docs/cli.md`; "
             "`tests/test_docs.py` checks it is current.", ""]
    for ctx in _walk(cli, "provenance", None):
        lines += [f"## `{ctx.command_path}`", "", "```text", ctx.command.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
