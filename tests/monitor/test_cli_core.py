"""The core CLI contract: ingest, find-earliest and db, in-process, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from storage.db import HEAD_REVISION
from tests.fingerprints.test_matching import CHAIR_FAMILY, NEGATIVE, TRIM_OFFSETS
from tests.video_fixtures import EXCERPT_START

# Distinct claims: the large-logo variant is deliberately the earliest.
CHAIR_CLAIMS = {
    "chair-22-with-large-logo-bar.mp4": "2024-02-27T08:00:00Z",
    "chair-orig-22-sd-bar.mp4": "2024-02-28T09:30:00Z",
    "chair-22-sd-grey-bar.mp4": "2024-02-29T10:00:00Z",
    "chair-22-sd-sepia-bar.mp4": "2024-03-01T11:00:00+02:00",
    "chair-22-with-small-logo-bar.mp4": "2024-03-02T12:00:00Z",
    "chair-20-sd-bar.mp4": "2024-03-03T13:00:00Z",
    "chair-19-sd-bar.mp4": "2024-03-04T14:00:00Z",
    NEGATIVE: "2024-01-01T00:00:00Z",
}


class Provenance:
    """Runs `provenance` in-process against one data dir and database."""

    def __init__(self, data_dir: Path, db_url: str | None):
        self.base = ["--data-dir", str(data_dir)] + (["--db", db_url] if db_url else [])
        self.data_dir = data_dir

    def __call__(self, *args: str, expect: int = 0):
        result = CliRunner().invoke(cli, [*self.base, *args], catch_exceptions=False)
        assert result.exit_code == expect, f"exit {result.exit_code}: {result.output}"
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self(*args).stdout)


@pytest.fixture
def prov(tmp_path, database_url) -> Provenance:
    return Provenance(tmp_path / "data", database_url)


@pytest.fixture
def prov_sqlite(tmp_path) -> Provenance:
    return Provenance(tmp_path / "data", None)


@pytest.mark.slow
def test_chair_set_acceptance(prov, chair_dir):
    for name, claim in CHAIR_CLAIMS.items():
        out = prov.json("ingest", str(chair_dir / name), "--url", f"https://example.org/{name}",
                        "--published-at", claim, "--platform", "example", "--json")
        assert out["media"]["new"] is True
    for name in CHAIR_FAMILY:
        report = prov.json("find-earliest", str(chair_dir / name), "--format", "json")
        urls = [a["url"] for a in report["appearances"]]
        assert sorted(urls) == sorted(f"https://example.org/{n}" for n in CHAIR_FAMILY), name
        assert report["earliest"]["url"] == "https://example.org/chair-22-with-large-logo-bar.mp4"
        assert report["earliest"]["published_at"] == "2024-02-27T08:00:00Z"
        claims = [a["published_at"] for a in report["appearances"]]
        assert claims == sorted(claims)
        assert report["query"]["sha256"] and report["query"]["duration"] > 18
        own = next(a for a in report["appearances"] if a["url"].endswith(name))
        assert own["match"]["exact"] is True and "identical file" in own["flags"]
        if name in TRIM_OFFSETS:
            orig = next(a for a in report["appearances"] if a["url"].endswith("chair-orig-22-sd-bar.mp4"))
            seg = orig["match"]["segments"][0]
            assert seg["stored_start"] - seg["query_start"] == pytest.approx(TRIM_OFFSETS[name], abs=0.5)
    sepia = next(a for a in report["appearances"] if "sepia" in a["url"])
    assert sepia["published_at"] == "2024-03-01T09:00:00Z"  # +02:00 stored as UTC
    negative = prov.json("find-earliest", str(chair_dir / NEGATIVE), "--format", "json")
    assert [a["url"] for a in negative["appearances"]] == [f"https://example.org/{NEGATIVE}"]  # itself only
    assert negative["appearances"][0]["match"]["exact"] is True


def test_negative_query_on_a_chair_store_finds_nothing(prov_sqlite, chair_dir):
    for name in ("chair-orig-22-sd-bar.mp4", "chair-19-sd-bar.mp4"):
        prov_sqlite("ingest", str(chair_dir / name))
    report = prov_sqlite.json("find-earliest", str(chair_dir / NEGATIVE), "--format", "json")
    assert report["earliest"] is None and report["appearances"] == []


@pytest.mark.slow
def test_generated_edits_are_found_and_unrelated_clips_are_not(prov_sqlite, sample_clips):
    prov_sqlite("ingest", str(sample_clips.source), "--url", "https://example.org/source",
                "--published-at", "2024-05-01T10:00:00Z")
    for i, path in enumerate(sample_clips.unrelated):
        prov_sqlite("ingest", str(path), "--url", f"https://example.org/other{i}", "--published-at", "2024-04-01")
    for edit, path in sample_clips.edits.items():
        report = prov_sqlite.json("find-earliest", str(path), "--format", "json")
        assert [a["url"] for a in report["appearances"]] == ["https://example.org/source"], edit
        match = report["earliest"]["match"]
        assert match["mirrored"] is (edit == "mirror")
        assert ("mirrored" in match["edits"]) is (edit == "mirror")
        assert any(e.startswith("played at 1.2") for e in match["edits"]) is (edit == "speed_1.25x")
        assert any(e.startswith("excerpt of the stored video") for e in match["edits"]) is (edit == "excerpt_6s")
        padded = [e for e in match["edits"] if e.startswith("padded")]
        assert bool(padded) is (edit in ("letterbox", "blurpad_9x16")), (edit, match["edits"], match["framing"])
        named = {"grey": "grey (colour removed)", "letterbox": "(black pads around it)",
                 "blurpad_9x16": "(blurred pads around it)"}  # seen in the colour frames
        if edit in named:
            assert any(named[edit] in e for e in match["edits"]), (edit, match["edits"])
        assert match["confidence"]["level"] in ("high", "medium"), (edit, match["confidence"])
        if edit == "letterbox":  # 320x180 footage in a 320x280 frame
            assert match["framing"]["query_height"] == pytest.approx(180 / 280, abs=0.05)
            assert match["framing"]["stored_height"] == 1.0
        if edit == "excerpt_6s":
            assert match["segments"][0]["stored_start"] == pytest.approx(EXCERPT_START, abs=0.5)
        assert match["frames"] and all(f["distance"] <= 14 for f in match["frames"])
        # every matched pair is explained by the regions that matched it (same framing for these edits)
        assert sum(match["regions"].values()) == len(match["frames"]), match["regions"]
        assert match["regions"].get("whole", 0) >= 0.5 * len(match["frames"]), (edit, match["regions"])
    for path in sample_clips.unrelated:
        report = prov_sqlite.json("find-earliest", str(path), "--format", "json")
        assert all(a["match"]["exact"] for a in report["appearances"])


def test_ingest_reports_matches_and_reingest_only_adds_a_post(prov_sqlite, sample_clips):
    prov_sqlite("ingest", str(sample_clips.source), "--url", "https://example.org/a")
    out = prov_sqlite.json("ingest", str(sample_clips.edits["letterbox"]), "--url", "https://example.org/b", "--json")
    assert [m["match"]["query_coverage"] > 0.8 for m in out["matches"]] == [True]
    again = prov_sqlite.json("ingest", str(sample_clips.edits["letterbox"]), "--url", "https://example.org/c",
                             "--json")
    assert again["media"]["new"] is False and again["media"]["id"] == out["media"]["id"]
    assert again["post"]["id"] != out["post"]["id"]
    assert len(again["matches"]) == 1
    text = prov_sqlite("ingest", str(sample_clips.edits["mirror"])).stdout
    assert "matches: 2" in text and "mirrored" in text  # the source and the letterboxed copy


def _store_files(data_dir: Path) -> list[Path]:
    media = data_dir / "media"
    return sorted(p for p in media.rglob("*") if p.is_file()) if media.exists() else []


@pytest.mark.parametrize("kind", ["zero-byte", "truncated", "corrupt", "not-video"])
def test_bad_files_exit_2_with_one_line_and_store_nothing(prov, bad_files, kind):
    result = prov("ingest", str(bad_files[kind]), expect=2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert _store_files(prov.data_dir) == []
    status = prov("db", "status").stdout
    assert "media: 0  posts: 0" in status
    prov("find-earliest", str(bad_files[kind]), expect=2)


def test_missing_file_and_bad_date_are_clear_errors(prov_sqlite, sample_clips, tmp_path):
    result = prov_sqlite("ingest", str(tmp_path / "nope.mp4"), expect=2)
    assert "no such file" in result.stderr
    result = prov_sqlite("ingest", str(sample_clips.source), "--published-at", "yesterday", expect=2)
    assert "ISO 8601" in result.stderr


HOSTILE_NAMES = ["with space.mp4", "quote's \"double\".mp4", "new\nline.mp4", "видео 视频.mp4",
                 "-rf --help.mp4", "$(touch pwned).mp4"]


def test_hostile_file_names_are_ingested_and_reported(prov_sqlite, sample_clips, tmp_path):
    incoming = tmp_path / "incoming" / "sub"
    incoming.mkdir(parents=True)
    before = {p for p in tmp_path.rglob("*")}
    data = sample_clips.edits["grey"].read_bytes()
    for i, name in enumerate(HOSTILE_NAMES):
        path = incoming / name
        path.write_bytes(data[:-1] + bytes([i]) if False else data)
        dotted = tmp_path / "incoming" / "sub" / ".." / "sub" / name  # a path with ../ in it
        out = prov_sqlite.json("ingest", str(dotted), "--json")
        assert out["post"]["url"].startswith("file:///")
        report = prov_sqlite.json("find-earliest", str(path), "--format", "json")
        assert report["query"]["path"] == str(path)
        assert len(report["appearances"]) == i + 1  # same bytes: one media, one more post each time
    files = _store_files(prov_sqlite.data_dir)
    assert len(files) == 1 and files[0].stem == out["media"]["sha256"]
    created = {p for p in tmp_path.rglob("*")} - before
    outside = [p for p in created if prov_sqlite.data_dir not in p.parents and p != prov_sqlite.data_dir
               and incoming not in p.parents]
    assert outside == [], outside
    assert not (Path.cwd() / "pwned").exists()
    text = prov_sqlite("find-earliest", str(incoming / "new\nline.mp4")).stdout
    assert "new\\nline.mp4" in text


@pytest.mark.slow
def test_report_formats(prov_sqlite, sample_clips, tmp_path):
    prov_sqlite("ingest", str(sample_clips.source), "--url", "https://example.org/src",
                "--published-at", "2024-05-01", "--uploader", "<script>alert(1)</script>")
    query = str(sample_clips.edits["mirror"])
    html_path = tmp_path / "report.html"
    prov_sqlite("find-earliest", query, "--format", "html", "--output", str(html_path))
    page = html_path.read_text()
    assert page.count("data:image/jpeg;base64,") >= 2
    assert "<script>alert" not in page and "&lt;script&gt;" in page
    assert "src='http" not in page and 'src="http' not in page  # self-contained
    assert "mirrored" in page
    md = prov_sqlite("find-earliest", query, "--format", "markdown").stdout
    assert "| # | published (claim)" in md and "https://example.org/src" in md
    text = prov_sqlite("find-earliest", query).stdout
    assert "Earliest:" in text and "2024-05-01 (day, user-supplied)" in text
    text_file = tmp_path / "report.txt"
    prov_sqlite("find-earliest", query, "--output", str(text_file))
    assert "Earliest:" in text_file.read_text()


@pytest.mark.slow
def test_day_claim_on_the_same_day_is_flagged_ambiguous(prov_sqlite, sample_clips):
    prov_sqlite("ingest", str(sample_clips.source), "--url", "https://example.org/day", "--published-at", "2024-05-01")
    prov_sqlite("ingest", str(sample_clips.edits["grey"]), "--url", "https://example.org/ts",
                "--published-at", "2024-05-01T15:00:00Z")
    prov_sqlite("ingest", str(sample_clips.edits["letterbox"]), "--url", "https://example.org/none")
    report = prov_sqlite.json("find-earliest", str(sample_clips.edits["mirror"]), "--format", "json")
    by_url = {a["url"]: a for a in report["appearances"]}
    assert [a["url"] for a in report["appearances"]][-1] == "https://example.org/none"
    assert "no claimed time" in by_url["https://example.org/none"]["flags"]
    assert "ambiguous" in by_url["https://example.org/day"]["flags"]
    assert "ambiguous" in by_url["https://example.org/ts"]["flags"]
    assert by_url["https://example.org/day"]["published_precision"] == "day"


def test_db_commands_and_environment_settings(tmp_path, monkeypatch, database_url):
    monkeypatch.setenv("PROVENANCE_DATA_DIR", str(tmp_path / "envdata"))
    monkeypatch.setenv("PROVENANCE_DB", database_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 0 and HEAD_REVISION in result.stdout
    result = runner.invoke(cli, ["db", "downgrade", "--yes"])
    assert result.exit_code == 0 and "base" in result.stdout
    result = runner.invoke(cli, ["db", "status"])  # migrates again on first use
    assert result.exit_code == 0 and HEAD_REVISION in result.stdout


def test_unreachable_database_and_bad_config_are_setup_errors(tmp_path):
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", "postgresql://nobody@127.0.0.1:1/none", "db", "status"])
    assert result.exit_code == 1 and "PROVENANCE_DB" in result.stderr
    bad = tmp_path / "config.toml"
    bad.write_text("[matching]\nmax_distanse = 3\n")
    result = runner.invoke(cli, ["--config", str(bad), "--data-dir", str(tmp_path), "db", "status"])
    assert result.exit_code == 1 and "max_distanse" in result.stderr


@pytest.mark.slow
def test_find_earliest_url_downloads_answers_and_optionally_ingests(prov, sample_clips, http_server):
    from datetime import UTC, datetime

    prov("ingest", str(sample_clips.source), "--url", "https://example.org/source", "--published-at", "2024-05-01")
    url = http_server.add_file("/cli/mirror-repost.mp4", sample_clips.edits["mirror"], "video/mp4",
                               last_modified=datetime(2024, 6, 1, 8, 0, tzinfo=UTC))
    report = prov.json("find-earliest", url, "--format", "json")
    assert report["query"]["url"] == url
    assert [a["url"] for a in report["appearances"]] == ["https://example.org/source"]
    assert report["earliest"]["match"]["mirrored"] is True
    assert "media: 1  posts: 1" in prov("db", "status").stdout  # the query was not stored

    report = prov.json("find-earliest", url, "--ingest", "--format", "json")
    by_url = {a["url"]: a for a in report["appearances"]}
    assert set(by_url) == {"https://example.org/source", url}
    assert by_url[url]["published_at"] == "2024-06-01T08:00:00Z"
    assert by_url[url]["published_source"] == "http last-modified"
    assert "media: 2  posts: 2" in prov("db", "status").stdout


def test_find_earliest_dead_url_is_an_input_error(prov_sqlite, http_server):
    for url in (http_server.url("/cli/missing.mp4"), http_server.refused_url("/x.mp4")):
        result = prov_sqlite("find-earliest", url, expect=2)
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_settings_change_is_announced_and_refingerprint_restores_matching(tmp_path, sample_clips):
    old = tmp_path / "old.toml"
    old.write_text("[fingerprint]\nfloor_interval = 0.5\n")
    data = ["--data-dir", str(tmp_path / "data")]
    runner = CliRunner()
    assert runner.invoke(cli, [*data, "--config", str(old), "ingest", str(sample_clips.source)]).exit_code == 0
    result = runner.invoke(cli, [*data, "find-earliest", str(sample_clips.edits["grey"]), "--format", "json"])
    assert "provenance refingerprint" in result.stderr
    assert json.loads(result.stdout)["appearances"] == []  # fingerprints of other settings are never compared
    result = runner.invoke(cli, [*data, "refingerprint", "--json"])
    assert json.loads(result.stdout)["fingerprinted"] == 1
    result = runner.invoke(cli, [*data, "find-earliest", str(sample_clips.edits["grey"]), "--format", "json"])
    assert "refingerprint" not in result.stderr and len(json.loads(result.stdout)["appearances"]) == 1


def test_padding_is_reported_from_either_side_of_a_stored_match(prov_sqlite, sample_clips):
    """A match stored when the letterboxed copy was ingested reads the right way round from both files."""
    prov_sqlite("ingest", str(sample_clips.source), "--url", "https://example.org/source")
    prov_sqlite("ingest", str(sample_clips.edits["letterbox"]), "--url", "https://example.org/letterbox")
    from_copy = prov_sqlite.json("find-earliest", str(sample_clips.edits["letterbox"]), "--format", "json")
    from_source = prov_sqlite.json("find-earliest", str(sample_clips.source), "--format", "json")
    (copy_view,) = [a for a in from_copy["appearances"] if a["url"] == "https://example.org/source"]
    (source_view,) = [a for a in from_source["appearances"] if a["url"] == "https://example.org/letterbox"]
    assert any(e.startswith("padded: the picture fills 100% × 6") for e in copy_view["match"]["edits"])
    assert any(e.startswith("the stored video is padded") for e in source_view["match"]["edits"])
    assert copy_view["match"]["framing"]["query_height"] == source_view["match"]["framing"]["stored_height"] < 0.7


@pytest.mark.slow
def test_url_query_reports_show_the_query_frames_and_the_url_as_given(prov_sqlite, sample_clips, http_server,
                                                                      tmp_path):
    """Issue 9.4: the HTML report of a URL query cut no query frames (0 of 4) and printed `http:/127...`."""
    from monitor.config import load_config
    from monitor.serve import answer
    from monitor.workspace import Workspace

    prov_sqlite("ingest", str(sample_clips.source), "--url", "https://example.org/source",
                "--published-at", "2024-05-01")
    url = http_server.add_file("/cli/frames/mirror%20repost.mp4", sample_clips.edits["mirror"], "video/mp4")
    page_path = tmp_path / "report.html"
    prov_sqlite("find-earliest", url, "--format", "html", "-o", str(page_path))
    ws = Workspace.open(load_config(None, prov_sqlite.data_dir, None))
    try:
        served = answer(ws, {"video": url, "format": "html", "cwd": str(tmp_path)})
    finally:
        ws.close()
    for page in (page_path.read_text(), served["text"]):
        query_frames = page.count('class="frame query')
        assert query_frames == page.count('class="frame stored') == 4
        assert "frame missing" not in page and f'href="{url}"' in page
    text = prov_sqlite("find-earliest", url).stdout
    assert url in text.splitlines()[0] and "http:/127" not in text
    report = prov_sqlite.json("find-earliest", url, "--format", "json")
    assert report["query"]["url"] == url and report["query"]["path"] is None
    assert url in prov_sqlite("find-earliest", url, "--format", "markdown").stdout
