"""`provenance serve` and the fast path of the `provenance` command: same answers, from a warm process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from monitor.config import default_data_dir as config_default_data_dir
from monitor.cli.fastpath import plain_find_earliest
from monitor.serve import default_data_dir, invocation, socket_path
from tests.store_fixtures import copy_store

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("argv, expected", [
    (["find-earliest", "a.mp4"], {"video": "a.mp4"}),
    (["--data-dir", "d", "find-earliest", "a.mp4", "--format", "json", "-o", "r.json"],
     {"--data-dir": "d", "video": "a.mp4", "--format": "json", "--output": "r.json"}),
    (["--db=sqlite:///x.db", "find-earliest", "--format=html", "https://t.me/s/c/1", "--ingest"],
     {"--db": "sqlite:///x.db", "video": "https://t.me/s/c/1", "--format": "html", "--ingest": "1"}),
])
def test_plain_find_earliest_is_recognised(argv, expected):
    assert plain_find_earliest(argv) == expected


@pytest.mark.parametrize("argv", [
    [], ["ingest", "a.mp4"], ["-v", "find-earliest", "a.mp4"], ["find-earliest", "--help"],
    ["find-earliest"], ["find-earliest", "a.mp4", "b.mp4"], ["find-earliest", "a.mp4", "--format", "pdf"],
])
def test_anything_else_goes_to_the_full_command(argv):
    assert plain_find_earliest(argv) is None


def test_default_data_dir_is_the_configs():
    assert default_data_dir() == config_default_data_dir()


def _provenance(data_dir: Path, *args: str, server: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PROVENANCE_NO_SERVER": "0" if server else "1"}
    return subprocess.run([sys.executable, "-c", "from monitor.cli.fastpath import main; main()",
                           "--data-dir", str(data_dir), *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


@pytest.fixture
def served(tmp_path, source_and_other_store):
    """A store with the source clip and an unrelated one, and `provenance serve` running on it."""
    data_dir = copy_store(source_and_other_store, tmp_path / "data")
    server = subprocess.Popen([sys.executable, "-m", "monitor.cli", "--data-dir", str(data_dir), "serve"],
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = server.stderr.readline()
        assert "answering find-earliest" in line, line + server.stderr.read()
        yield data_dir
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert server.returncode == 0
    assert not socket_path(data_dir).exists()  # cleaned up on SIGTERM


@pytest.mark.slow
def test_served_answer_is_the_full_commands_answer(served, sample_clips, tmp_path):
    query = str(sample_clips.edits["mirror"])
    fast = _provenance(served, "find-earliest", query, "--format", "json")
    slow = _provenance(served, "find-earliest", query, "--format", "json", server=False)
    assert fast.returncode == slow.returncode == 0, fast.stderr + slow.stderr
    fast_report, slow_report = json.loads(fast.stdout), json.loads(slow.stdout)
    assert fast_report["appearances"] == slow_report["appearances"]
    assert [a["url"] for a in fast_report["appearances"]] == ["https://example.org/source"]
    assert "mirrored" in fast_report["appearances"][0]["match"]["edits"]
    # text and files, relative to the client's directory
    out = _provenance(served, "find-earliest", query, "-o", str(tmp_path / "r.md"), "--format", "markdown")
    assert out.returncode == 0 and "report written to" in out.stderr
    assert "https://example.org/source" in (tmp_path / "r.md").read_text()
    text = _provenance(served, "find-earliest", query)
    assert text.returncode == 0 and "https://example.org/source" in text.stdout


def test_served_errors_keep_the_exit_codes_and_the_server(served, tmp_path):
    missing = _provenance(served, "find-earliest", str(tmp_path / "nope.mp4"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    bad = _provenance(served, "find-earliest", str(junk))
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
    assert socket_path(served).exists()  # still serving


def test_a_server_for_another_store_is_not_used(served, sample_clips):
    """Same data dir, other database: the server declines and the command answers by itself."""
    other_db = f"sqlite:///{served.parent / 'other.db'}"
    started = time.perf_counter()
    result = _provenance(served, "--db", other_db, "find-earliest", str(sample_clips.source), "--format", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["appearances"] == []  # the other database is empty
    assert time.perf_counter() - started < 120


def test_invocation_reads_options_then_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("PROVENANCE_DB", raising=False)
    monkeypatch.delenv("PROVENANCE_CONFIG", raising=False)
    assert invocation(None, None, None) == {"db": "", "data_dir": str(tmp_path.resolve()), "config": ""}
    assert invocation("sqlite:///a.db", str(tmp_path / "x"), None)["data_dir"] == str((tmp_path / "x").resolve())
