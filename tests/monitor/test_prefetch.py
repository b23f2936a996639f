"""The head start of a cold find-earliest (`monitor.cli.prefetch`): same analysis, same reports, same errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.jobs.earliest import FLAG_EXACT, find_earliest
from monitor.analysis import InputError, analyse_file
from monitor.workspace import Workspace
from tests.monitor.test_cli_core import Provenance
from tests.store_fixtures import copy_store

ROOT = Path(__file__).resolve().parents[2]

# Forks as the `provenance` command does, then compares the child's analysis with `analyse_file`.
_COMPARE = """
import json, sys
from pathlib import Path
from monitor.cli import prefetch
video, data_dir = sys.argv[1], sys.argv[2]
prefetch.start(video, None, data_dir, None)
from monitor.config import load_config
from monitor.analysis import analyse_file
from fingerprints.signals import kind
settings = load_config(data_dir=data_dir).fingerprint_settings
started = prefetch.take(Path(video))
seen = []
got = started.analysed(settings, lambda done, total: seen.append((done, total))) if started else None
want = analyse_file(Path(video), settings, describe=False)
for analysed in (got, want):  # ffprobe names the temporary link, a new one each time
    if analysed:
        analysed.probe["format"].pop("filename")
        # per-video signal values hold arrays: compared as the bytes stored of them
        analysed.fingerprint.signals = {name: kind(name).to_bytes(value)
                                        for name, value in analysed.fingerprint.signals.items()}
print(json.dumps({"forked": started is not None, "equal": got == want, "progress": bool(seen)}))
"""


def _command(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The `provenance` console script, cold (no server), in a fresh process."""
    return subprocess.run([sys.executable, "-c", "from monitor.cli.fastpath import main; main()",
                           "--data-dir", str(data_dir), *args], capture_output=True, text=True,
                          env={**os.environ, "PROVENANCE_NO_SERVER": "1"}, cwd=ROOT, timeout=120)


@pytest.fixture
def store(tmp_path, source_and_other_store) -> Provenance:
    """The source clip (https://example.org/source) and an unrelated one (https://example.org/other)."""
    return Provenance(copy_store(source_and_other_store, tmp_path / "data"), None)


def test_the_forked_analysis_is_analyse_files(sample_clips, tmp_path):
    done = subprocess.run([sys.executable, "-c", _COMPARE, str(sample_clips.edits["mirror"]), str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"forked": True, "equal": True, "progress": True}


@pytest.mark.slow
def test_cold_command_gives_the_in_process_report(store, sample_clips):
    for query in (sample_clips.edits["mirror"], sample_clips.source):  # a new file, and stored bytes
        cold = _command(store.data_dir, "find-earliest", str(query), "--format", "json")
        assert cold.returncode == 0, cold.stderr
        assert cold.stdout == store("find-earliest", str(query), "--format", "json").stdout
    exact = json.loads(cold.stdout)["appearances"][0]
    assert FLAG_EXACT in exact["flags"]


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "corrupt", "not-video"])
def test_cold_command_errors_are_the_in_process_errors(store, bad_files, kind):
    cold = _command(store.data_dir, "find-earliest", str(bad_files[kind]), "--format", "json")
    warm = store("find-earliest", str(bad_files[kind]), "--format", "json", expect=2)
    assert cold.returncode == 2 and cold.stdout == ""
    assert _unaddressed(cold.stderr) == _unaddressed(warm.stderr)


def _unaddressed(text: str) -> str:
    """Without the memory addresses ffmpeg puts in its complaints, which change from run to run."""
    return re.sub(r"0x[0-9a-f]+", "0x…", text)


def test_stored_bytes_take_the_shortcut_before_any_head_start(store, sample_clips):
    ws = Workspace.open(load_config(data_dir=store.data_dir))
    try:
        def never():
            raise AssertionError("stored bytes are answered from stored matches")

        report = find_earliest(ws, sample_clips.source, head_start=never)
        assert report.appearances[0].match is None
    finally:
        ws.close()


@pytest.mark.slow
def test_a_head_start_that_fails_falls_back_to_analysing_here(store, sample_clips, bad_files):
    ws = Workspace.open(load_config(data_dir=store.data_dir))
    try:
        query = sample_clips.edits["mirror"]
        fallback = find_earliest(ws, query, head_start=lambda: None)
        given = find_earliest(ws, query, head_start=lambda: analyse_file(query, ws.settings, describe=False))
        assert fallback.appearances == given.appearances == find_earliest(ws, query).appearances
        with pytest.raises(InputError):
            find_earliest(ws, bad_files["corrupt"], head_start=lambda: None)
    finally:
        ws.close()


def test_the_analysis_loads_no_database_code():
    """The head start is worth having because the child skips SQLAlchemy: keep it that way."""
    done = subprocess.run([sys.executable, "-c", "import sys, monitor.analysis, monitor.config; "
                           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic')))"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _children(pid: int) -> set[int]:
    """Processes whose parent is `pid`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_command_leaves_no_analysis_running(store, tmp_path):
    """SIGTERM to a cold find-earliest while its child analyses: the child and its ffmpeg go too."""
    import signal
    import time

    long_clip = tmp_path / "long.mp4"  # an hour of video, small and quick to make at 2 frames per second
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=2:d=3600",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(long_clip)], check=True)
    # every frame at 640 px, 30 per second: its analysis would run for many minutes, so the child and its
    # ffmpeg can only be gone within the generous deadline below if the kill took them
    slow = tmp_path / "slow.toml"
    slow.write_text("[fingerprint]\nanalysis_fps = 30.0\nanalysis_size = 640\nfloor_interval = 0.034\n")
    command = subprocess.Popen([sys.executable, "-c", "from monitor.cli.fastpath import main; main()",
                                "--config", str(slow), "--data-dir", str(store.data_dir), "find-earliest",
                                str(long_clip)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                               env={**os.environ, "PROVENANCE_NO_SERVER": "1"})
    deadline = time.monotonic() + 30
    child = None
    while child is None and time.monotonic() < deadline:
        child = next(iter(_children(command.pid)), None)
        time.sleep(0.05)
    assert child is not None, "the command forked no analysis"
    decoders: set[int] = set()
    while not decoders and time.monotonic() < deadline + 30:  # wait until the child is decoding
        decoders = {p for p in _children(child) if _cmdline(p).startswith("ffmpeg")}
        time.sleep(0.05)
    assert decoders, "the analysis started no ffmpeg"
    command.send_signal(signal.SIGTERM)
    command.wait(timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (_alive(child) or any(_alive(p) for p in decoders)):
        time.sleep(0.1)
    assert not _alive(child) and not any(_alive(p) for p in decoders)
