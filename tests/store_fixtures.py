"""Stores that several tests start from: ingested once per test run, copied into each test's own data dir.

    def store(tmp_path, source_and_other_store):
        data_dir = copy_store(source_and_other_store, tmp_path / "data")

The template is made with the real `provenance ingest` (SQLite) and never
changed afterwards; a copy is the whole data dir (database, media store,
on-disk indexes), the same as a test that ingested the files itself would
have, so ingesting is tested where it is the subject and paid for once here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.video_fixtures import SampleClips, made_once


def _ingest(data_dir: Path, *args: str) -> None:
    from monitor.cli.main import cli  # here: loading the plugin stays cheap for tests that need no store

    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _make_source_and_other(root: Path, clips: SampleClips) -> Path:
    data_dir = root / "data"
    _ingest(data_dir, str(clips.source), "--url", "https://example.org/source",
            "--published-at", "2024-03-01T10:00:00Z")
    _ingest(data_dir, str(clips.unrelated[0]), "--url", "https://example.org/other")
    return data_dir


@pytest.fixture(scope="session")
def source_and_other_store(tmp_path_factory, sample_clips) -> Path:
    """A data dir holding the source clip (https://example.org/source, claimed 2024-03-01T10:00:00Z) and the
    first unrelated clip (https://example.org/other).  Copy it (`copy_store`); never use it in place."""
    return made_once(tmp_path_factory, "source-and-other-store",
                     lambda root: _make_source_and_other(root, sample_clips))


def _make_source_and_two_others(root: Path, clips: SampleClips) -> Path:
    data_dir = root / "data"
    for path in (clips.source, *clips.unrelated[:2]):
        _ingest(data_dir, str(path))
    return data_dir


@pytest.fixture(scope="session")
def source_and_two_others_store(tmp_path_factory, sample_clips) -> Path:
    """A data dir holding the source clip and the first two unrelated clips, ingested with no URL or claim.
    Copy it (`copy_store`); never use it in place."""
    return made_once(tmp_path_factory, "source-and-two-others-store",
                     lambda root: _make_source_and_two_others(root, sample_clips))


def copy_store(template: Path, data_dir: Path) -> Path:
    shutil.copytree(template, data_dir)
    return data_dir
