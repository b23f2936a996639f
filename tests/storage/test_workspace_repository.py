"""The workspace half of the repository on SQLite and PostgreSQL: search, footage edges, claims, merges,
deletions, tracking, alerts, accounts and the audit trail."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from storage import NotFound, SqlRepository, StorageError
from storage.records import (PRECISION_DAY, PRECISION_SECOND, SOURCE_RSS_PUBDATE, FrameRow, NewMatch, NewObservation,
                             NewPost, PostSearch, SignalValue)
from tests.storage.test_repository import new_media

UTC = timezone.utc
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings_id(repository: SqlRepository) -> int:
    return repository.get_or_create_settings("phash64-test", "phash64", {})


@pytest.fixture
def store(repository: SqlRepository, settings_id: int):
    """Four media; posts on three platforms, two watches, claims and sightings a day apart; a match chain 1-2-3."""
    media = [repository.add_media(new_media(n)).id for n in (1, 2, 3, 4)]
    watch = repository.add_watch("https://news.example/feed.rss", "rss", "Harbour Gazette")
    other = repository.add_watch("https://other.example/feed.rss", "rss", "Other")
    posts = []
    for n, (m, url, platform, uploader, title, watch_id) in enumerate([
        (media[0], "https://t.me/harbour/10", "telegram", "harbour", "Fire at the pier", watch.id),
        (media[1], "https://www.youtube.com/watch?v=abc_100%", "youtube", "newsdesk", "Pier fire, mirrored", None),
        (media[2], "https://t.me/harbour/11", "telegram", "harbour", "Smoke over the water", watch.id),
        (media[3], "https://example.org/unrelated", "web", "someone", "A cat", other.id),
        (media[0], "https://t.me/s/harbour/10", "telegram", "harbour", "Fire at the pier", watch.id),
    ]):
        posts.append(repository.add_post(NewPost(
            media_id=m, url=url, platform=platform, uploader=uploader, title=title, watch_id=watch_id,
            description=f"description {n} with FIRE" if n == 2 else None,
            published_at=T0 + timedelta(days=n), published_precision=PRECISION_SECOND,
            published_source=SOURCE_RSS_PUBDATE, first_seen_at=T0 + timedelta(days=n, hours=1))).id)
    for a, b in ((media[1], media[0]), (media[2], media[1])):
        repository.save_match(NewMatch(query_media_id=a, stored_media_id=b, settings_id=settings_id,
                                       query_coverage=1.0, stored_coverage=1.0, mirrored=False, speed=1.0, score=1.0,
                                       segments=[]))
    return {"media": media, "posts": posts, "watch": watch.id, "other": other.id}


def ids(posts) -> list[int]:
    return [p.id for p in posts]


def test_search_narrows_by_every_field_newest_first(repository, store):
    p = store["posts"]
    assert ids(repository.search_posts(PostSearch())) == p[::-1]
    assert ids(repository.search_posts(PostSearch(url="T.ME/HARBOUR"))) == [p[2], p[0]]  # substring, any case
    assert ids(repository.search_posts(PostSearch(url="100%"))) == [p[1]]  # % and _ are text, not wildcards
    assert ids(repository.search_posts(PostSearch(url="abc_"))) == [p[1]]
    assert ids(repository.search_posts(PostSearch(url="c%10"))) == []  # a wildcard would match "c_10"
    assert ids(repository.search_posts(PostSearch(text="fire"))) == [p[4], p[2], p[1], p[0]]  # title or description
    assert ids(repository.search_posts(PostSearch(uploader="harbour", platform="telegram"))) == [p[4], p[2], p[0]]
    assert ids(repository.search_posts(PostSearch(watch_ids=(store["watch"],)))) == [p[4], p[2], p[0]]
    assert ids(repository.search_posts(PostSearch(claimed_from=T0 + timedelta(days=1),
                                                  claimed_to=T0 + timedelta(days=3)))) == [p[2], p[1]]
    assert ids(repository.search_posts(PostSearch(seen_from=T0 + timedelta(days=3)))) == [p[4], p[3]]
    assert ids(repository.search_posts(PostSearch(limit=2, offset=1))) == [p[3], p[2]]
    assert repository.count_posts_matching(PostSearch(platform="telegram")) == 3
    assert repository.watch_ids_labelled("harbour gazette") == [store["watch"]]
    with pytest.raises(ValueError, match="timezone-aware"):
        repository.search_posts(PostSearch(seen_from=datetime(2024, 1, 1)))


def test_searches_are_served_by_indexes(repository, store):
    """Uploader, platform, watch and sighting filters have indexes on both databases; on PostgreSQL the
    substring search of URLs can use the trigram index (plans forced off scans: the table is tiny)."""
    if repository.database.dialect == "sqlite":
        with repository.database.engine.connect() as connection:
            for column in ("uploader", "platform", "watch_id", "first_seen_at"):
                plan = " ".join(str(r[-1]) for r in connection.execute(sa.text(
                    f"EXPLAIN QUERY PLAN SELECT id FROM posts WHERE {column} = :v"), {"v": 1}))
                assert f"ix_posts_{column}" in plan, plan
        return
    with repository.database.engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(connection.execute(sa.text(
            "EXPLAIN SELECT id FROM posts WHERE url ILIKE '%harbour%'")).scalars())
    assert "ix_posts_url_trgm" in plan


def test_sha256_prefix_finds_one_or_says_it_is_ambiguous(repository, store):
    assert [m.id for m in repository.media_by_sha256_prefix("0000")] == store["media"][:2]  # limit 2: ambiguous
    assert [m.id for m in repository.media_by_sha256_prefix(f"{3:064x}")] == [store["media"][2]]
    assert repository.media_by_sha256_prefix("ffff") == []
    for bad in ("abc", "zzzz", "0000'"):
        with pytest.raises(ValueError):
            repository.media_by_sha256_prefix(bad)


def test_footage_edges_and_media_summaries(repository, store, settings_id):
    m = store["media"]
    assert sorted(repository.match_edges(settings_id)) == sorted([(m[1], m[0]), (m[2], m[1])])
    summary = repository.posts_by_media()
    assert summary[m[0]].posts == 2 and summary[m[0]].earliest_claim == T0
    assert summary[m[0]].last_seen == T0 + timedelta(days=4, hours=1)


def test_user_claims_sit_beside_the_platform_claim(repository, store):
    post = store["posts"][1]
    first = repository.add_claim(post, T0 - timedelta(days=3), PRECISION_DAY, "alice", "the original's EXIF")
    second = repository.add_claim(post, T0 - timedelta(days=2), PRECISION_SECOND, "bob", "archive.org copy",
                                  correction=True)
    assert repository.claims_for_posts([post, store["posts"][0]]) == {post: [first, second]}
    assert (second.source, second.correction, second.author) == ("user", True, "bob")
    assert repository.get_post(post).published_at == T0 + timedelta(days=1)  # the platform's claim is untouched
    with pytest.raises(ValueError, match="reason is required"):
        repository.add_claim(post, T0, PRECISION_DAY, "alice", "  ")
    with pytest.raises(NotFound):
        repository.add_claim(999999, T0, PRECISION_DAY, "alice", "why")


def test_merges_keep_both_posts_and_never_chain(repository, store):
    p = store["posts"]
    repository.merge_post(p[4], p[0], "alice", "t.me/s/ and t.me/ are the same post")
    assert ids(repository.search_posts(PostSearch(url="harbour/10"))) == [p[0]]
    assert ids(repository.search_posts(PostSearch(url="harbour/10", include_merged=True))) == [p[4], p[0]]
    assert repository.get_post(p[4]) is not None
    with pytest.raises(StorageError, match="already merged"):
        repository.merge_post(p[4], p[1], "alice", "again")
    with pytest.raises(StorageError, match="merge into post"):
        repository.merge_post(p[1], p[4], "alice", "into a duplicate")
    repository.merge_post(p[0], p[2], "bob", "all one thread")  # p[4] now points at p[2] too
    assert {(m.post_id, m.into_post_id) for m in repository.merges_of_posts(p)} == {(p[4], p[2]), (p[0], p[2])}
    assert store["media"][0] not in repository.posts_by_media()  # both its posts are merged duplicates


def test_deleting_media_removes_its_rows_and_keeps_a_record(repository, store, settings_id):
    m, p = store["media"], store["posts"]
    repository.add_fingerprint(m[0], settings_id, [FrameRow(0, 0.0, {"hash": 5})], 1, {},
                               signals=[SignalValue("cuts", 1, b"\x01")])
    repository.add_fingerprint(m[1], settings_id, [], 1, {}, signals=[SignalValue("cuts", 1, b"\x02")])
    repository.add_claim(p[0], T0, PRECISION_DAY, "alice", "why")
    repository.merge_post(p[4], p[0], "alice", "dup")
    repository.add_observation(NewObservation(post_id=p[0], observed_at=T0, status="up", method="http head",
                                              tool="t"))
    tracked = repository.add_tracked(m[0], "pier fire", "pier.mp4", "alice")
    alert = repository.add_alert("tracked", p[2], m[2], tracked.id, m[0], "new item matches")
    repository.record_item_stored(store["watch"], "generic x", p[0] and "https://t.me/harbour/10", p[0])

    deletion = repository.delete_media(m[0], "bob", "privacy request")

    assert repository.get_media(m[0]) is None and repository.get_post(p[0]) is None and repository.get_post(p[4]) is None
    assert repository.frames_for_media(m[0], settings_id) == [] and not repository.has_fingerprint(m[0], settings_id)
    assert [r.media_id for r in repository.iter_media_signals(settings_id, "cuts", 1)] == [m[1]]
    assert deletion.details["removed"]["signals"] == 1
    assert repository.matches_for_media(m[1], settings_id)[0].stored_media_id == m[2]  # only 2-3 is left
    assert repository.list_tracked(active_only=False) == []
    (kept,) = repository.list_alerts()
    assert (kept.id, kept.tracked_id, kept.matched_media_id) == (alert.id, None, None)
    assert repository.get_watch_item(store["watch"], "generic x").post_id is None
    assert (deletion.kind, deletion.sha256, deletion.author, deletion.reason) == ("media", f"{1:064x}", "bob",
                                                                                  "privacy request")
    assert [d["id"] for d in deletion.details["posts"]] == [p[0], p[4]]
    assert deletion.details["removed"]["frames"] == 1 and deletion.details["removed"]["observations"] == 1
    assert repository.deletions_of(f"{1:064x}") == [deletion]


def test_deleting_a_post_keeps_its_media(repository, store):
    p, m = store["posts"], store["media"]
    deletion = repository.delete_post(p[4], "bob", "wrong URL")
    assert repository.get_post(p[4]) is None and repository.get_media(m[0]) is not None
    assert (deletion.kind, deletion.post_id, deletion.url) == ("post", p[4], "https://t.me/s/harbour/10")


def test_tracking_alerts_and_deliveries(repository, store):
    m, p = store["media"], store["posts"]
    tracked = repository.add_tracked(m[0], "pier fire", "pier.mp4", "alice")
    assert repository.add_tracked(m[0], "again", "x", "bob") == tracked  # one active entry per media
    assert repository.tracked_for_media([m[0], m[1]]) == [tracked]
    alert = repository.add_alert("tracked", p[1], m[1], tracked.id, m[0], "new item matches tracked footage")
    repository.add_alert_delivery(alert.id, "json:// (notify #1)", True, None)
    repository.add_alert_delivery(alert.id, "slack:// (notify #2)", False, "timed out")
    (listed,) = repository.list_alerts(unread_only=True)
    assert [(d.target, d.ok, d.error) for d in listed.deliveries] == [
        ("json:// (notify #1)", True, None), ("slack:// (notify #2)", False, "timed out")]
    assert repository.last_alert_id() == alert.id and repository.count_unread_alerts() == 1
    acked = repository.ack_alert(alert.id, "carol")
    assert acked.acked_by == "carol" and repository.list_alerts(unread_only=True) == []
    stopped = repository.stop_tracking(tracked.id, "alice")
    assert not stopped.active and stopped.removed_by == "alice" and repository.tracked_for_media([m[0]]) == []


def test_accounts_and_audit(repository):
    user = repository.add_user("alice", "$argon2id$fake", "admin", "root")
    assert repository.user_named("alice") == user and repository.password_hash(user.id) == "$argon2id$fake"
    with pytest.raises(StorageError, match="exists already"):
        repository.add_user("alice", "x", "viewer", "root")
    with pytest.raises(ValueError, match="role"):
        repository.add_user("bob", "x", "owner", "root")
    repository.add_audit("alice", "web", "watch.add", "watch 1", {"url": "https://x"})
    repository.add_audit("root", "cli", "user.remove", "user bob", {})
    assert [(e.actor, e.action) for e in repository.list_audit()] == [("root", "user.remove"),
                                                                      ("alice", "watch.add")]
    assert repository.remove_user("alice").name == "alice" and repository.count_users() == 0
