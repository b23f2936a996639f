"""Evidence bundles: export a find-earliest answer, verify it, and catch every change to it.

The store holds a source clip and four re-upload edits of it (five
appearances); time-stamps come from a local `openssl ts` authority
(tests/tsa_fixtures.py).  Tampering flips one byte at a random position of
each file in turn, in place, and puts it back.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import zipfile
from pathlib import Path

import pytest

from monitor.bundle import MANIFEST, TOKEN, verify_bundle, write_manifest
from monitor.timestamp import check_timestamp, request_timestamp
from monitor.synth.samples import EDITS, make_edit, make_source_clip
from tests.monitor.test_cli_core import Provenance
from tests.video_fixtures import made_once

EDITED = ("mirror", "letterbox")
APPEARANCES = [("source", "https://example.org/first"), ("mirror", "https://example.org/mirrored"),
               ("source", "https://example.net/copy"), ("letterbox", "https://example.org/letterboxed"),
               ("source", "https://example.com/again")]
SEED = 20240301


def flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(scope="session")
def footage(tmp_path_factory) -> dict[str, Path]:
    """An 8 s source clip and two re-upload edits of it."""
    return made_once(tmp_path_factory, "evidence-footage", _make_footage)


def _make_footage(root: Path) -> dict[str, Path]:
    source = make_source_clip(root / "source.mp4", seed=4, duration=8.0)
    return {"source": source, **{name: make_edit(source, root / f"{name}.mp4", EDITS[name]) for name in EDITED}}


@pytest.fixture
def store(tmp_path, database_url, footage, local_tsa) -> Provenance:
    """Five appearances of one footage (the source at three URLs, two edits), and a config naming the local TSA."""
    config = tmp_path / "config.toml"
    config.write_text(f'[evidence]\ntsa_url = "{local_tsa.url}"\ntsa_ca_file = "{local_tsa.ca_file}"\n'
                      "frames_per_appearance = 2\n")
    prov = Provenance(tmp_path / "data", database_url)
    prov.base += ["--config", str(config)]
    for n, (name, url) in enumerate(APPEARANCES, 1):
        prov("ingest", str(footage[name]), "--url", url, "--published-at", f"2024-03-0{n}T09:00:00Z")
    return prov


@pytest.mark.slow
def test_export_then_verify_and_every_changed_byte_is_named(store, footage, local_tsa, tmp_path):
    bundle = tmp_path / "bundle"
    out = store.json("export", str(footage["source"]), "-o", str(bundle), "--json")
    assert out["appearances"] == 5 and out["media_included"] == 3 and out["stills_missing"] == []
    assert out["timestamp"]["checked_against_ca"] is True and out["timestamp"]["tsa"] == "CN=Test TSA"

    manifest = json.loads((bundle / MANIFEST).read_text())
    listed = {f["path"] for f in manifest["files"]}
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert on_disk == listed | {MANIFEST, TOKEN}
    assert {"report.txt", "report.json", "report.md", "report.html"} <= listed
    report = json.loads((bundle / "report.json").read_text())
    assert [a["url"] for a in report["appearances"]] == [url for _, url in APPEARANCES]
    assert [a["url"] for a in manifest["appearances"]] == [url for _, url in APPEARANCES]
    for appearance, (name, _) in zip(manifest["appearances"], APPEARANCES):
        folder = bundle / appearance["directory"]
        assert (bundle / appearance["media_file"]).read_bytes() == footage[name].read_bytes()
        post = json.loads((folder / "post.json").read_text())
        assert post["id"] == appearance["post_id"] and post["raw_metadata"]["ingest"]["path"] == str(footage[name])
        assert json.loads((folder / "ffprobe.json").read_text())["streams"]
        assert json.loads((folder / "exiftool.json").read_text())["File:FileType"] == "MP4"
        assert json.loads((folder / "observations.json").read_text()) == []
        stills = sorted((folder / "frames").iterdir())
        assert {s.name.split("-")[1] for s in stills} == {"query", "stored"}
        assert all(s.read_bytes()[:2] == b"\xff\xd8" for s in stills)  # JPEG
    assert (bundle / manifest["query"]["file"]).read_bytes() == footage["source"].read_bytes()
    assert manifest["fingerprint_settings"]["key"] and manifest["matching"]["max_distance"] == 14
    assert manifest["store"]["counts"] == {"media": 3, "posts": 5, "observations": 0}
    assert manifest["store"]["database"].startswith(("sqlite", "postgresql"))
    assert manifest["tools"]["ffmpeg"].startswith("ffmpeg version") and manifest["tools"]["yt-dlp"]

    ca = local_tsa.ca_file.read_bytes()
    first = verify_bundle(bundle, ca)
    assert first.ok, [str(p) for p in first.problems]
    assert first.files_checked == len(listed) and first.timestamp.signature_checked
    assert store("verify", str(bundle)).stdout.splitlines()[-1].startswith("ok: ")

    rng = random.Random(SEED)
    for name in sorted(listed | {MANIFEST}):
        path = bundle / name
        position = rng.randrange(path.stat().st_size)
        flip(path, position)
        try:
            found = verify_bundle(bundle, ca)
        finally:
            flip(path, position)
        lines = [str(p) for p in found.problems]
        assert not found.ok and name in {p.path for p in found.problems}, (name, lines)
        if name != MANIFEST:  # a changed manifest may misdescribe other files as well
            entry = next(f for f in manifest["files"] if f["path"] == name)
            assert len(lines) == 1 and lines[0].startswith(f"changed: {name} (sha256 "), lines
            assert lines[0].endswith(f"expected {entry['sha256']}, {entry['size']} bytes)"), lines
    assert verify_bundle(bundle, ca).ok

    media = next(n for n in listed if n.startswith("media/"))
    flip(bundle / media, 100)
    result = store("verify", str(bundle), expect=1)
    flip(bundle / media, 100)
    assert f"changed: {media} (sha256 " in result.stdout and "expected" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("FAILED (1 problems)")

    # the same answer as a ZIP, without the videos
    target = tmp_path / "evidence.zip"
    out = store.json("export", str(footage["mirror"]), "-o", str(target), "--no-media", "--json")
    assert out["appearances"] == 5 and out["media_included"] == 0 and out["media_hash_only"] == 3
    assert verify_bundle(target, ca).ok
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        zipped = json.loads(archive.read(MANIFEST))
    assert not any(n.startswith(("media/", "query/")) for n in names)
    assert all(a["media_file"] is None and len(a["sha256"]) == 64 for a in zipped["appearances"])
    still = next(n for n in names if n.endswith(".jpg"))
    with zipfile.ZipFile(target) as archive:
        info = archive.getinfo(still)
    with open(target, "rb") as stream:
        stream.seek(info.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", stream.read(4))
    flip(target, info.header_offset + 30 + name_length + extra_length + info.compress_size // 2)
    problems = verify_bundle(target, ca).problems
    assert [(p.kind, p.path) for p in problems] == [("changed", still)], [str(p) for p in problems]

    # a file added, a file taken away
    (bundle / "notes.txt").write_text("added later")
    gone = next(bundle.glob("appearances/*/frames/*.jpg"))
    gone.unlink()
    lines = [str(p) for p in verify_bundle(bundle, ca).problems]
    assert lines[0] == "unexpected file: notes.txt (not in the manifest)"
    assert lines[1].startswith(f"missing: {gone.relative_to(bundle).as_posix()} (sha256 ") and len(lines) == 2


@pytest.fixture
def stamped(tmp_path, local_tsa) -> Path:
    """A small bundle of two files, its manifest time-stamped by the local TSA."""
    root = tmp_path / "stamped"
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.txt").write_text("one")
    (root / "two.bin").write_bytes(bytes(range(256)))
    manifest = write_manifest(root, {"timestamp_authority": local_tsa.url})
    (root / TOKEN).write_bytes(request_timestamp(manifest, local_tsa.url))
    return root


def test_every_changed_byte_of_the_token_fails_and_only_the_right_ca_verifies(stamped, local_tsa, tmp_path):
    ca = local_tsa.ca_file.read_bytes()
    token, manifest = (stamped / TOKEN).read_bytes(), (stamped / MANIFEST).read_bytes()
    good = check_timestamp(token, manifest, ca)
    assert good.ok and good.tsa == "CN=Test TSA" and good.hash_algorithm == "sha256"
    rng = random.Random(SEED)
    unnoticed = []
    for position in range(len(token)):
        for value in {token[position] ^ 0x01, rng.randrange(256)} - {token[position]}:
            changed = bytearray(token)
            changed[position] = value
            if check_timestamp(bytes(changed), manifest, ca).ok:
                unnoticed.append((position, value))
    assert unnoticed == []
    assert not check_timestamp(token + b"\0", manifest, ca).ok

    prov = Provenance(tmp_path / "data", None)  # verify needs no database
    assert "time-stamp verified" in prov("verify", str(stamped), "--tsa-ca", str(local_tsa.ca_file)).stdout
    flip(stamped / TOKEN, len(token) // 2)
    out = prov("verify", str(stamped), "--tsa-ca", str(local_tsa.ca_file), expect=1).stdout
    flip(stamped / TOKEN, len(token) // 2)
    assert f"time-stamp: {TOKEN}: " in out and "FAILED" in out

    wrong = json.loads(prov("verify", str(stamped), "--tsa-ca", str(local_tsa.other_ca_file), "--json",
                            expect=1).stdout)
    assert [p["kind"] for p in wrong["problems"]] == ["time-stamp"] and "does not verify" in wrong["problems"][0]["detail"]
    unchecked = verify_bundle(stamped, None)
    assert [p.kind for p in unchecked.problems] == ["time-stamp"] and "not checked" in unchecked.problems[0].detail

    # a genuine token for another manifest: the manifest is what changed
    (stamped / "two.bin").write_bytes(b"other")
    stale = (stamped / MANIFEST).read_bytes()
    write_manifest(stamped, {"timestamp_authority": local_tsa.url})
    lines = [str(p) for p in verify_bundle(stamped, ca).problems]
    assert lines == [f"changed: {MANIFEST} (sha256 {hashlib.sha256((stamped / MANIFEST).read_bytes()).hexdigest()}; "
                     f"the time-stamp token is for {hashlib.sha256(stale).hexdigest()})"]
    (stamped / TOKEN).unlink()
    assert [str(p) for p in verify_bundle(stamped, ca).problems] == [
        f"missing: {TOKEN} (the manifest says it was time-stamped by {local_tsa.url})"]


def test_export_refuses_an_existing_target_and_leaves_nothing_when_the_tsa_fails(tmp_path, tiny_clips, http_server):
    prov = Provenance(tmp_path / "data", None)
    taken = tmp_path / "taken"
    taken.mkdir()
    clip = str(tiny_clips["testsrc2"])
    assert "exists already" in prov("export", clip, "-o", str(taken), expect=2).stderr
    assert "no such file" in prov("export", str(tmp_path / "nothing.mp4"), "-o", str(tmp_path / "b"), expect=2).stderr
    dead = http_server.refused_url("/tsr")
    failed = prov("export", clip, "-o", str(tmp_path / "bundle.zip"), "--tsa", dead, expect=1)
    assert "cannot reach the time-stamping authority" in failed.stderr and "--no-timestamp" in failed.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "taken"]
    assert prov("verify", str(tmp_path / "nothing"), expect=2).stderr.startswith("error: ")


@pytest.mark.slow
def test_export_of_a_url_keeps_the_downloaded_query(tmp_path, tiny_clips, http_server):
    prov = Provenance(tmp_path / "data", None)
    prov("ingest", str(tiny_clips["cellauto"]), "--url", "https://example.org/cellauto")
    url = http_server.add_file(f"/export-{tmp_path.name}/clip.mp4", tiny_clips["cellauto"], "video/mp4")
    bundle = tmp_path / "bundle"
    prov("export", url, "-o", str(bundle), "--no-timestamp")
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["query"]["url"] == url and manifest["query"]["path"] is None
    assert (bundle / manifest["query"]["file"]).read_bytes() == tiny_clips["cellauto"].read_bytes()
    assert [a["url"] for a in manifest["appearances"]] == ["https://example.org/cellauto"]
    assert manifest["timestamp_authority"] is None and verify_bundle(bundle).ok
