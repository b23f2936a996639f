"""The content-addressed media store: atomic, verified, and never led outside the data dir."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from storage import MediaStore, StorageError, sha256_file


@pytest.fixture
def store(tmp_path) -> MediaStore:
    return MediaStore(tmp_path / "data")


@pytest.fixture
def video(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "download" / "Breaking news! (1).mp4"
    path.parent.mkdir()
    content = os.urandom(3 * (1 << 20) + 17)  # more than one read chunk
    path.write_bytes(content)
    return path, hashlib.sha256(content).hexdigest()


def leftovers(store: MediaStore) -> list[Path]:
    return [p for p in store.data_dir.rglob(".incoming-*")]


def test_sha256_file_matches_hashlib(video):
    path, sha = video
    assert sha256_file(path) == sha


def test_put_stores_under_the_hash(store, video):
    path, sha = video
    rel = store.put(path, sha, "mp4")
    assert rel == f"media/{sha[:2]}/{sha}.mp4"
    assert store.path(rel).read_bytes() == path.read_bytes()
    assert leftovers(store) == []


def test_put_keeps_an_existing_identical_file(store, video):
    path, sha = video
    rel = store.put(path, sha, "mp4")
    before = store.path(rel).stat()
    assert store.put(path, sha, "mp4") == rel
    after = store.path(rel).stat()
    assert before.st_ino == after.st_ino  # not copied again
    assert after.st_mtime_ns >= before.st_mtime_ns  # only touched: a sweep's grace period now covers the new ingest


@pytest.mark.parametrize("extension", ["../x", "mp4/../../etc", "", None, "toolongext", "m p4", "ünï"])
def test_unsafe_extensions_are_dropped(store, video, extension):
    path, sha = video
    assert store.put(path, sha, extension) == f"media/{sha[:2]}/{sha}"
    assert list(store.data_dir.rglob("*x*")) == []


def test_extension_is_normalised(store, video):
    path, sha = video
    assert store.put(path, sha, ".MP4").endswith(f"{sha}.mp4")


def test_wrong_hash_is_refused_and_leaves_nothing(store, video):
    path, _ = video
    wrong = "0" * 64
    with pytest.raises(StorageError, match="hash it again"):
        store.put(path, wrong, "mp4")
    assert not store.path(f"media/00/{wrong}.mp4").exists()
    assert leftovers(store) == []


def test_malformed_hash_is_refused(store, video):
    path, _ = video
    with pytest.raises(ValueError, match="SHA-256"):
        store.put(path, "../../etc/passwd", "mp4")


@pytest.mark.parametrize("rel", ["../outside.mp4", "media/../../outside", "/etc/passwd", ""])
def test_paths_outside_the_data_dir_are_refused(store, rel):
    with pytest.raises(ValueError):
        store.path(rel)


def test_symlink_out_of_the_data_dir_is_refused(store, tmp_path):
    (store.data_dir / "media").mkdir(parents=True)
    (store.data_dir / "media" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside the data dir"):
        store.path("media/link/secret")


def test_disk_full_removes_the_partial_file(store, video, monkeypatch):
    path, sha = video

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(StorageError, match="disk full while storing media"):
        store.put(path, sha, "mp4")
    assert leftovers(store) == []
    assert not list(store.data_dir.rglob(f"{sha}*"))
