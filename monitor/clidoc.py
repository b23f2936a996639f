"""Render the CLI reference (docs/cli.md) from the click commands themselves.

The reference is generated, and tests/test_docs.py fails when the committed
file differs from what this prints, so the docs cannot drift from the code.
Regenerate with: python -m monitor.clidoc > docs/cli.md
"""

from __future__ import annotations

import click

from monitor.cli import cli


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], [*path, name])


def render() -> str:
    lines = ["# CLI reference", "",
             "Generated from the code by `python -m monitor.clidoc > docs/cli.md`; "
             "`tests/test_docs.py` checks it is current.", ""]
    for path, command in _walk(cli, ["provenance"]):
        ctx = click.Context(command, info_name=" ".join(path), terminal_width=100, max_content_width=100)
        lines += [f"## `{' '.join(path)}`", "", "```text", command.get_help(ctx).rstrip(), "```", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
