"""The docs stay true: config.toml lists every setting at its default, the CLI reference is current."""

from __future__ import annotations

import tomllib
from dataclasses import asdict
from pathlib import Path

import click

from fingerprints.align import MatchParams
from fingerprints.model import FingerprintSettings
from monitor.cli.main import cli
from monitor.cli.docs import render
from monitor.config import DEFAULTS, load_config
from monitor.failures import KINDS

ROOT = Path(__file__).resolve().parent.parent


def test_config_toml_lists_every_setting_at_its_default():
    documented = tomllib.loads((ROOT / "config.toml").read_text())
    assert documented["fingerprint"] == FingerprintSettings().params()
    assert documented["matching"] == asdict(MatchParams())
    for section, values in DEFAULTS.items():
        if section not in ("fingerprint", "matching"):
            assert documented[section] == values, section
    load_config(ROOT / "config.toml")  # and it loads


def test_every_failure_kind_is_documented():
    documented = (ROOT / "docs" / "provenance.md").read_text()
    assert [kind for kind in KINDS if f"| `{kind}` |" not in documented] == []
    assert "| `http-NNN` |" in documented


def test_cli_reference_is_generated_from_the_current_code():
    assert (ROOT / "docs" / "cli.md").read_text() == render(), \
        "docs/cli.md is stale: run `python -m monitor.cli.docs > docs/cli.md`"


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_command_has_help_with_an_example():
    for path, command in _commands(cli):
        if path and not isinstance(command, click.Group):
            assert command.help and "Example:" in command.help, " ".join(path)


def test_readme_and_ci_use_the_same_commands():
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
