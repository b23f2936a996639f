"""posts, footage, corrections and deletions from the command line, on SQLite and PostgreSQL, with their trail."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from tests.monitor.test_cli_core import Provenance, prov  # noqa: F401 (the fixture)


def ingest(prov: Provenance, path, url: str, *extra: str) -> dict:
    return prov.json("ingest", str(path), "--url", url, "--json", *extra)


def earliest(prov: Provenance, path) -> list[dict]:
    return prov.json("find-earliest", str(path), "--format", "json")["appearances"]


@pytest.mark.slow
def test_search_correct_merge_and_delete_with_a_trail(prov, footage_clips):  # noqa: F811
    clips = footage_clips
    a = ingest(prov, clips["original"], "https://news.example/a", "--published-at", "2024-03-02",
               "--platform", "news", "--uploader", "desk", "--title", "Harbour fire")
    b = ingest(prov, clips["mirrored"], "https://t.me/harbour/7", "--published-at", "2024-03-03T09:00:00Z",
               "--platform", "telegram", "--uploader", "harbour")
    c = ingest(prov, clips["cropped"], "https://t.me/s/harbour/7", "--platform", "telegram", "--uploader", "harbour")
    d = ingest(prov, clips["unrelated"], "https://example.org/cat", "--platform", "web")
    again = ingest(prov, clips["original"], "https://news.example/a")
    assert (again["post"]["id"], again["post"]["new"], again["media"]["new"]) == (a["post"]["id"], False, False)
    ids = {k: v["post"]["id"] for k, v in {"a": a, "b": b, "c": c, "d": d}.items()}

    assert [p["id"] for p in prov.json("posts", "--json")] == [ids["d"], ids["c"], ids["b"], ids["a"]]
    assert [p["id"] for p in prov.json("posts", "--url", "HARBOUR/7", "--json")] == [ids["c"], ids["b"]]
    assert [p["id"] for p in prov.json("posts", "--uploader", "desk", "--claimed-from", "2024-03-02",
                                       "--claimed-to", "2024-03-02", "--json")] == [ids["a"]]
    assert [p["id"] for p in prov.json("posts", "--text", "harbour", "--limit", "1", "--json")] == [ids["a"]]
    csv_lines = prov("posts", "--platform", "telegram", "--csv").stdout.splitlines()
    assert csv_lines[0].startswith("id,media_id,sha256,url") and len(csv_lines) == 3
    (group,) = prov.json("footage", "--json")
    assert group["posts"] == 3 and sorted(group["media_ids"]) == sorted(
        [a["media"]["id"], b["media"]["id"], c["media"]["id"]])
    shown = prov.json("posts", "show", str(ids["b"]), "--json")
    assert {m["media_id"] for m in shown["matches"]} >= {a["media"]["id"]}
    assert shown["claims"]["platform"]["source"] == "user-supplied"

    # a person's correction orders the report and is shown as theirs; the platform's claim stays
    prov("posts", "claim", str(ids["b"]), "--published-at", "2024-03-01T06:00:00Z", "--reason", "camera EXIF",
         "--correction", "--author", "alice")
    prov("posts", "claim", str(ids["a"]), "--published-at", "2024-02-01", "--reason", "a rumour",
         "--author", "bob")
    found = earliest(prov, clips["original"])
    first, second = found[0], found[1]
    assert (first["post_id"], first["ordered_by"], first["published_at"]) == (ids["b"], "user correction",
                                                                            "2024-03-03T09:00:00Z")
    assert "user correction" in first["flags"] and first["user_claims"][0]["author"] == "alice"
    assert (second["post_id"], second["ordered_by"]) == (ids["a"], "platform claim")
    assert second["user_claims"][0]["correction"] is False
    text = prov("find-earliest", str(clips["original"])).stdout
    assert "user correction by alice" in text and "claimed by a person: user claim 2024-02-01" in text

    # merging keeps both rows; the duplicate leaves searches and reports
    prov("posts", "merge", str(ids["c"]), "--into", str(ids["b"]), "--reason", "same Telegram post")
    assert ids["c"] not in [p["id"] for p in prov.json("posts", "--json")]
    merged = prov.json("posts", "--merged", "--json")
    assert next(p for p in merged if p["id"] == ids["c"])["merged_into"] == ids["b"]
    assert ids["c"] not in [x["post_id"] for x in earliest(prov, clips["original"])]
    assert prov("posts", "merge", str(ids["c"]), "--into", str(ids["a"]), "--reason", "x", expect=2)

    # deleting a file: gone from the store, the indexes and find-earliest; its record stays
    stored = prov.data_dir / b["media"]["store_path"]
    assert stored.is_file()
    deletion = prov.json("media", "delete", b["media"]["sha256"][:10], "--reason", "privacy request", "--yes",
                         "--json", "--author", "carol")
    assert not stored.exists()
    assert (deletion["kind"], deletion["sha256"], deletion["author"]) == ("media", b["media"]["sha256"], "carol")
    assert {p["id"] for p in deletion["details"]["posts"]} == {ids["b"]}
    left = earliest(prov, clips["mirrored"])
    assert b["media"]["id"] not in [x["media_id"] for x in left] and ids["b"] not in [x["post_id"] for x in left]
    assert "deleted" in prov("media", "show", b["media"]["sha256"], expect=2).stderr
    refused = prov("ingest", str(clips["mirrored"]), "--url", "https://t.me/harbour/7", expect=2)
    assert "was deleted" in refused.stderr and "privacy request" in refused.stderr
    back = ingest(prov, clips["mirrored"], "https://t.me/harbour/7", "--allow-deleted")
    assert back["media"]["new"] is True and (prov.data_dir / back["media"]["store_path"]).is_file()

    # deleting a file's last post deletes the file too
    gone = prov.json("posts", "delete", str(ids["d"]), "--reason", "not ours", "--yes", "--json")
    assert gone["kind"] == "media" and not (prov.data_dir / d["media"]["store_path"]).exists()

    trail = prov.json("audit", "--json")
    assert [(e["action"], e["actor"]) for e in trail] == [
        ("media.delete", gone["author"]), ("media.delete", "carol"), ("post.merge", trail[2]["actor"]),
        ("claim.add", "bob"), ("claim.add", "alice")]
    assert all(e["via"] == "cli" for e in trail)


def test_bad_input_says_how_to_fix_it(prov, footage_clips):  # noqa: F811
    assert "no post with id 99" in prov("posts", "show", "99", expect=2).stderr
    assert "not a SHA-256" in prov("media", "show", "xyz", expect=2).stderr
    assert "is not an ISO 8601" in prov("posts", "--claimed-from", "March", expect=2).output
    result = CliRunner().invoke(cli, [*prov.base, "posts", "claim", "1", "--published-at", "2024-01-01"])
    assert result.exit_code == 2 and "--reason" in result.output
    ingest(prov, footage_clips["original"], "https://news.example/a")
    ingest(prov, footage_clips["unrelated"], "https://news.example/b")
    prefix = json.loads(prov("posts", "--json").stdout)[0]["sha256"][:1]
    assert prov("media", "show", prefix, expect=2)  # too short to be a prefix


def test_footage_groups_are_the_connected_components_of_the_matches(repository):
    """Media 1-2-3 (2's only post merged away still links them) and 4-5 are footage; 6 stands alone."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    from monitor.jobs.browse import footage_group_of, footage_groups
    from storage.records import NewMatch, NewPost
    from tests.storage.test_repository import new_media

    settings = repository.get_or_create_settings("s", "phash64", {})
    media = [repository.add_media(new_media(n)).id for n in range(1, 7)]
    t0 = datetime(2024, 3, 1, tzinfo=UTC)
    posts = [repository.add_post(NewPost(media_id=m, url=f"https://x.example/{n}", first_seen_at=t0 + timedelta(n)))
             for n, m in enumerate([media[0], media[0], media[1], media[2], media[3], media[4], media[5]])]
    repository.merge_post(posts[2].id, posts[0].id, "alice", "duplicate")
    for a, b in ((media[1], media[0]), (media[2], media[1]), (media[4], media[3])):
        repository.save_match(NewMatch(query_media_id=a, stored_media_id=b, settings_id=settings, query_coverage=1.0,
                                       stored_coverage=1.0, mirrored=False, speed=1.0, score=1.0, segments=[]))
    ws = SimpleNamespace(repository=repository, settings_id=settings)

    by_size = footage_groups(ws)
    assert [(g.media_ids, g.posts) for g in by_size] == [([media[0], media[2]], 3), ([media[3], media[4]], 2)]
    assert [p.id for p in by_size[0].sample] == [posts[0].id, posts[1].id, posts[3].id]
    assert [g.media_ids for g in footage_groups(ws, sort="newest")] == [[media[3], media[4]], [media[0], media[2]]]
    assert footage_group_of(ws, media[5]).posts == 1
