"""Every repository method, on SQLite and PostgreSQL (see tests/db_fixtures.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from storage import AlreadyExists, NotFound, SqlRepository
from storage.records import (
    PRECISION_DAY,
    PRECISION_SECOND,
    SOURCE_YTDLP_TIMESTAMP,
    SOURCE_YTDLP_UPLOAD_DATE,
    FrameRow,
    MatchSegmentRecord,
    NewMatch,
    NewMedia,
    NewPost,
    SignalRow,
    SignalValue,
)

UTC = timezone.utc
HASHES = [0, 1, (1 << 63) - 1, 1 << 63, (1 << 63) + 12345, (1 << 64) - 1]


def new_media(n: int = 1, **changes) -> NewMedia:
    sha = f"{n:064x}"
    media = NewMedia(
        sha256=sha,
        size_bytes=1000 + n,
        store_path=f"media/{sha[:2]}/{sha}.mp4",
        duration=12.5,
        width=640,
        height=360,
        fps=25.0,
        video_codec="h264",
        audio_codec="aac",
        container_format="mov,mp4,m4a,3gp,3g2,mj2",
        container_created_raw="2024:03:01 10:00:00",
        container_created_at=datetime(2024, 3, 1, 10, 0, tzinfo=UTC),
        exiftool={"QuickTime:CreateDate": "2024:03:01 10:00:00"},
        ffprobe={"format": {"duration": "12.5"}},
    )
    return replace(media, **changes)


@pytest.fixture
def settings_id(repository: SqlRepository) -> int:
    return repository.get_or_create_settings("phash64-v1-3f2a9c1d", "phash64", {"analysis_fps": 8.0})


@pytest.fixture
def media_ids(repository: SqlRepository) -> list[int]:
    return [repository.add_media(new_media(n)).id for n in (1, 2, 3)]


def frames(count: int, hashes=HASHES) -> list[FrameRow]:
    return [
        FrameRow(index=i, timestamp=i * 0.25, hashes={"hash": hashes[i % len(hashes)]}, is_scene_cut=i == 0,
                 quality=10.5)
        for i in range(count)
    ]


# --- settings and media ------------------------------------------------------


def test_settings_are_created_once(repository, settings_id):
    again = repository.get_or_create_settings("phash64-v1-3f2a9c1d", "phash64", {"other": 1})
    other = repository.get_or_create_settings("phash64-v2-00000000", "phash64", {})
    assert again == settings_id
    assert other != settings_id


def test_add_media_round_trips_every_field(repository):
    stored = repository.add_media(new_media())
    assert stored.id > 0
    assert stored.created_at.tzinfo is not None
    assert repository.get_media(stored.id) == stored
    assert repository.get_media_by_sha256(stored.sha256) == stored
    assert stored.container_created_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert stored.exiftool == {"QuickTime:CreateDate": "2024:03:01 10:00:00"}
    assert repository.get_media(9999) is None
    assert repository.get_media_by_sha256("f" * 64) is None


def test_add_media_is_idempotent_and_never_overwrites(repository):
    first = repository.add_media(new_media())
    again = repository.add_media(new_media(width=1, exiftool={"changed": True}, store_path="elsewhere"))
    assert again == first
    assert repository.count_media() == 1
    assert repository.list_media() == [first]


def test_add_media_refuses_naive_datetimes(repository):
    with pytest.raises(ValueError, match="timezone-aware"):
        repository.add_media(new_media(container_created_at=datetime(2024, 1, 1)))


def test_list_and_count_media(repository, media_ids):
    assert [m.id for m in repository.list_media()] == media_ids
    assert repository.count_media() == 3


# --- fingerprints --------------------------------------------------------------


def test_unsigned_64_bit_hashes_round_trip(repository, media_ids, settings_id):
    rows = frames(len(HASHES))
    repository.add_fingerprint(media_ids[0], settings_id, rows, frames_decoded=50, details={"crop": [0, 0, 320, 180]})
    assert repository.frames_for_media(media_ids[0], settings_id) == rows
    assert [f.hashes["hash"] for f in repository.frames_for_media(media_ids[0], settings_id)] == HASHES


def test_fingerprint_with_no_usable_frames_is_still_recorded(repository, media_ids, settings_id):
    assert not repository.has_fingerprint(media_ids[0], settings_id)
    repository.add_fingerprint(media_ids[0], settings_id, [], frames_decoded=40, details={})
    assert repository.has_fingerprint(media_ids[0], settings_id)
    assert repository.frames_for_media(media_ids[0], settings_id) == []
    assert repository.media_without_fingerprint(settings_id) == media_ids[1:]


def test_fingerprinting_twice_is_refused(repository, media_ids, settings_id):
    repository.add_fingerprint(media_ids[0], settings_id, frames(3), frames_decoded=3, details={})
    with pytest.raises(AlreadyExists, match="already fingerprinted"):
        repository.add_fingerprint(media_ids[0], settings_id, frames(3), frames_decoded=3, details={})
    assert len(repository.frames_for_media(media_ids[0], settings_id)) == 3


def test_frame_columns_are_column_wise_uint64_in_row_order(repository, media_ids, settings_id):
    other_settings = repository.get_or_create_settings("other", "phash64", {})
    repository.add_fingerprint(media_ids[1], settings_id, frames(6), frames_decoded=6, details={})
    repository.add_fingerprint(media_ids[0], settings_id, frames(2), frames_decoded=2, details={})
    repository.add_fingerprint(media_ids[2], other_settings, frames(4), frames_decoded=4, details={})

    column = repository.frame_column(settings_id, "hash")
    assert column.hashes.dtype == np.uint64
    assert column.media_ids.dtype == np.int64 and column.row_ids.dtype == np.int64
    assert column.timestamps.dtype == np.float64
    assert column.media_ids.tolist() == [media_ids[1]] * 6 + [media_ids[0]] * 2  # in the order stored
    assert column.hashes.tolist() == HASHES + HASHES[:2]
    assert column.timestamps.tolist() == [i * 0.25 for i in range(6)] + [0.0, 0.25]
    assert column.row_ids.tolist() == sorted(column.row_ids.tolist())
    assert repository.last_frame_row_id(settings_id) == column.row_ids[-1]

    # catching up reads only the rows stored after a row id
    newer = repository.frame_column(settings_id, "hash", after_row_id=int(column.row_ids[5]))
    assert newer.media_ids.tolist() == [media_ids[0]] * 2

    unused = repository.get_or_create_settings("unused", "phash64", {})
    empty = repository.frame_column(unused, "motion_hash")
    assert empty.hashes.dtype == np.uint64 and len(empty) == 0
    assert repository.last_frame_row_id(unused) == 0
    with pytest.raises(ValueError, match="unknown hash column"):
        repository.frame_column(settings_id, "colour_hash")


def test_every_hash_column_round_trips_as_unsigned(repository, media_ids, settings_id):
    """Every hash kind keeps all 64 bits (stored signed, read back unsigned); a missing one stays missing."""
    rows = [FrameRow(index=i, timestamp=i * 0.25,
                     hashes={"hash": HASHES[i], "centre_hash": HASHES[-1 - i],
                             **({"motion_hash": HASHES[i] ^ (1 << 63)} if i != 2 else {})},
                     overlay_masked=i == 1)
            for i in range(3)]
    repository.add_fingerprint(media_ids[0], settings_id, rows, frames_decoded=3, details={})
    assert repository.frames_for_media(media_ids[0], settings_id) == rows
    motion = repository.frame_column(settings_id, "motion_hash")
    assert motion.hashes.tolist() == [HASHES[0] ^ (1 << 63), HASHES[1] ^ (1 << 63)]
    assert repository.frame_column(settings_id, "centre_hash").hashes.tolist() == [HASHES[-1], HASHES[-2], HASHES[-3]]
    with pytest.raises(ValueError, match="unknown hash column"):
        repository.add_fingerprint(media_ids[1], settings_id, [FrameRow(0, 0.0, {"colour_hash": 1})], 1, {})


def test_thousands_of_frames_insert_in_a_few_statements(repository, media_ids, settings_id):
    """Frames go in as batches, not a round trip per row (speed itself is benchmarked, not tested)."""
    import sqlalchemy as sa

    rows = frames(5000, hashes=[(i * 0x9E3779B97F4A7C15) % (1 << 64) for i in range(97)])
    statements = []
    engine = repository.database.engine
    listener = lambda *args: statements.append(args[2])  # noqa: E731 (conn, cursor, statement, ...)
    sa.event.listen(engine, "before_cursor_execute", listener)
    try:
        repository.add_fingerprint(media_ids[0], settings_id, rows, frames_decoded=5000, details={})
    finally:
        sa.event.remove(engine, "before_cursor_execute", listener)
    assert sum("frames" in s and s.lstrip().upper().startswith("INSERT") for s in statements) <= 10, statements
    assert repository.frames_for_media(media_ids[0], settings_id) == rows


def test_out_of_range_hash_is_refused(repository, media_ids, settings_id):
    with pytest.raises(ValueError, match="unsigned 64-bit"):
        repository.add_fingerprint(media_ids[0], settings_id, frames(1, hashes=[1 << 64]), 1, {})
    assert not repository.has_fingerprint(media_ids[0], settings_id)


# --- per-video signals -----------------------------------------------------------

BLOBS = [bytes(range(256)) * 40, b"", b"\x00\xff" * 3]  # every byte value, empty, NULs: kept bit for bit


def test_signals_are_stored_with_the_frames_and_read_back_bit_for_bit(repository, media_ids, settings_id):
    repository.add_fingerprint(media_ids[0], settings_id, frames(3), frames_decoded=3, details={},
                               signals=[SignalValue("cuts", 1, BLOBS[0]), SignalValue("cuts", 2, BLOBS[2])])
    repository.add_fingerprint(media_ids[1], settings_id, frames(2), frames_decoded=2, details={},
                               signals=[SignalValue("cuts", 1, BLOBS[1])])
    assert repository.media_signal(media_ids[0], settings_id, "cuts", 1) == BLOBS[0]
    assert repository.media_signal(media_ids[0], settings_id, "cuts", 2) == BLOBS[2]
    assert repository.media_signal(media_ids[1], settings_id, "cuts", 1) == b""
    assert repository.media_signal(media_ids[2], settings_id, "cuts", 1) is None
    assert repository.media_signal(media_ids[0], settings_id, "audio", 1) is None

    rows = list(repository.iter_media_signals(settings_id, "cuts", 1))
    assert [(r.media_id, r.value) for r in rows] == [(media_ids[0], BLOBS[0]), (media_ids[1], b"")]
    assert rows[0].row_id < rows[1].row_id == repository.last_media_signal_row_id(settings_id, "cuts", 1)
    # catching up reads only the rows after a high-water mark, in batches of any size
    assert list(repository.iter_media_signals(settings_id, "cuts", 1, after_row_id=rows[0].row_id)) == rows[1:]
    assert list(repository.iter_media_signals(settings_id, "cuts", 1, batch_rows=1)) == rows
    assert repository.count_media_signals(settings_id, "cuts", 1) == 2
    assert repository.count_media_signals(settings_id, "cuts", 2) == 1
    assert repository.media_signal_row_exists(settings_id, "cuts", 1, rows[1].row_id)
    assert not repository.media_signal_row_exists(settings_id, "cuts", 2, rows[1].row_id)
    other = repository.get_or_create_settings("other", "phash64", {})
    assert repository.last_media_signal_row_id(other, "cuts", 1) == 0
    assert list(repository.iter_media_signals(other, "cuts", 1)) == []
    assert isinstance(rows[0], SignalRow)


def test_a_failed_signal_insert_stores_no_frames_either(repository, media_ids, settings_id):
    """Frames and signals go in one transaction: two values of one kind and version leave nothing."""
    twice = [SignalValue("cuts", 1, b"a"), SignalValue("cuts", 1, b"b")]
    with pytest.raises(Exception):
        repository.add_fingerprint(media_ids[0], settings_id, frames(3), frames_decoded=3, details={}, signals=twice)
    assert not repository.has_fingerprint(media_ids[0], settings_id)
    assert repository.frames_for_media(media_ids[0], settings_id) == []
    assert repository.media_signal(media_ids[0], settings_id, "cuts", 1) is None


def test_signals_backfilled_for_media_fingerprinted_without_them(repository, media_ids, settings_id):
    for media_id in media_ids[:2]:
        repository.add_fingerprint(media_id, settings_id, frames(2), frames_decoded=2, details={})
    assert repository.media_without_signal(settings_id, "cuts", 1) == media_ids[:2]  # not the unfingerprinted one
    repository.add_media_signals(media_ids[1], settings_id, [SignalValue("cuts", 1, b"x")])
    assert repository.media_without_signal(settings_id, "cuts", 1) == media_ids[:1]
    assert repository.media_without_signal(settings_id, "cuts", 2) == media_ids[:2]  # a new version: all again
    with pytest.raises(AlreadyExists, match="cuts v1"):
        repository.add_media_signals(media_ids[1], settings_id, [SignalValue("cuts", 1, b"y")])
    assert repository.media_signal(media_ids[1], settings_id, "cuts", 1) == b"x"


# --- posts -------------------------------------------------------------------


def test_post_round_trips_with_aware_datetimes(repository, media_ids):
    published = datetime(2024, 3, 2, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    post = repository.add_post(
        NewPost(
            media_id=media_ids[0],
            url="https://example.org/v/1",
            platform="youtube",
            platform_post_id="1",
            archive_key="youtube 1",
            title="A title with 'quotes' and ünïcode",
            published_at=published,
            published_precision=PRECISION_SECOND,
            published_source=SOURCE_YTDLP_TIMESTAMP,
            view_count=(1 << 40),
            raw_metadata={"id": "1", "tags": ["a", "b"]},
        )
    )
    assert post.published_at == published
    assert post.published_at.utcoffset() == timedelta(0)
    assert post.first_seen_at.tzinfo is not None
    assert abs(post.first_seen_at - datetime.now(UTC)) < timedelta(minutes=1)
    assert repository.get_post(post.id) == post
    assert repository.get_post_by_archive_key("youtube 1") == post
    assert repository.get_post_by_archive_key("youtube 2") is None
    assert repository.list_posts() == [post]


def test_archive_key_is_unique_but_optional(repository, media_ids):
    first = repository.add_post(NewPost(media_id=media_ids[0], url="u1", archive_key="tiktok 9"))
    with pytest.raises(AlreadyExists, match=f"post {first.id}"):
        repository.add_post(NewPost(media_id=media_ids[1], url="u2", archive_key="tiktok 9"))
    repository.add_post(NewPost(media_id=media_ids[1], url="u3"))
    repository.add_post(NewPost(media_id=media_ids[1], url="u4"))
    assert len(repository.list_posts()) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"published_at": datetime(2024, 1, 1, tzinfo=UTC)}, "without published_precision, published_source"),
        ({"published_precision": PRECISION_DAY, "published_source": SOURCE_YTDLP_UPLOAD_DATE}, "without published_at"),
        (
            {"published_at": datetime(2024, 1, 1, tzinfo=UTC), "published_precision": "hour", "published_source": "x"},
            "not one of second, day",
        ),
        (
            {"published_at": datetime(2024, 1, 1), "published_precision": "day", "published_source": "x"},
            "timezone-aware",
        ),
    ],
)
def test_inconsistent_published_claim_is_refused(repository, media_ids, changes, message):
    with pytest.raises(ValueError, match=message):
        repository.add_post(NewPost(media_id=media_ids[0], url="u", **changes))
    assert repository.list_posts() == []


def test_posts_for_media_earliest_claim_first(repository, media_ids):
    def post(media_id, url, day=None):
        claim = {}
        if day is not None:
            claim = {
                "published_at": datetime(2024, 1, day, tzinfo=UTC),
                "published_precision": PRECISION_DAY,
                "published_source": SOURCE_YTDLP_UPLOAD_DATE,
            }
        return repository.add_post(NewPost(media_id=media_id, url=url, **claim)).url

    post(media_ids[0], "late", 20)
    post(media_ids[1], "unknown")
    post(media_ids[1], "early", 3)
    post(media_ids[2], "other media", 1)
    assert [p.url for p in repository.posts_for_media(media_ids[:2])] == ["early", "late", "unknown"]
    assert repository.posts_for_media([]) == []


# --- matches -----------------------------------------------------------------


def a_match(query: int, stored: int, settings: int, **changes) -> NewMatch:
    match = NewMatch(
        query_media_id=query,
        stored_media_id=stored,
        settings_id=settings,
        query_coverage=0.9,
        stored_coverage=0.3,
        mirrored=True,
        speed=2.0,
        score=0.8,
        segments=[MatchSegmentRecord(query_start=0.0, query_end=4.0, stored_start=10.0, stored_end=18.0)],
        evidence={"matched_frames": 12},
    )
    return replace(match, **changes)


def test_save_match_replaces_a_recomputation(repository, media_ids, settings_id):
    first = repository.save_match(a_match(media_ids[0], media_ids[1], settings_id))
    assert first.segments[0].stored_end == 18.0 and first.evidence == {"matched_frames": 12}
    again = repository.save_match(a_match(media_ids[0], media_ids[1], settings_id, score=0.95, segments=[]))
    assert again.id == first.id
    assert again.score == 0.95 and again.segments == []
    assert len(repository.matches_for_media(media_ids[0], settings_id)) == 1


def test_matches_for_media_puts_the_media_on_the_query_side(repository, media_ids, settings_id):
    repository.save_match(a_match(media_ids[0], media_ids[1], settings_id))
    other_settings = repository.get_or_create_settings("other", "phash64", {})
    repository.save_match(a_match(media_ids[0], media_ids[2], other_settings))

    [as_query] = repository.matches_for_media(media_ids[0], settings_id)
    assert (as_query.query_media_id, as_query.stored_media_id) == (media_ids[0], media_ids[1])
    assert as_query.query_coverage == 0.9

    [as_stored] = repository.matches_for_media(media_ids[1], settings_id)
    assert (as_stored.query_media_id, as_stored.stored_media_id) == (media_ids[1], media_ids[0])
    assert (as_stored.query_coverage, as_stored.stored_coverage) == (0.3, 0.9)
    assert as_stored.speed == 0.5
    assert as_stored.mirrored is True
    assert as_stored.segments == [MatchSegmentRecord(10.0, 18.0, 0.0, 4.0)]
    assert repository.matches_for_media(media_ids[2], settings_id) == []


def test_matches_among_gives_each_match_between_the_media_from_both_sides(repository, media_ids, settings_id):
    a, b, c = media_ids
    repository.save_match(a_match(a, b, settings_id))
    repository.save_match(a_match(c, a, settings_id, mirrored=False))
    other_settings = repository.get_or_create_settings("other", "phash64", {})
    repository.save_match(a_match(b, c, other_settings))
    seen = {(m.query_media_id, m.stored_media_id): m for m in repository.matches_among([a, b], settings_id)}
    assert set(seen) == {(a, b), (b, a)}  # c is not asked for; b-c is another setting's
    assert seen[(b, a)] == repository.matches_for_media(b, settings_id)[0]
    both = repository.matches_among(media_ids, settings_id)
    assert {(m.query_media_id, m.stored_media_id) for m in both} == {(a, b), (b, a), (c, a), (a, c)}
    assert repository.matches_among([a], settings_id) == []


def test_linked_media_are_the_copies_stored_matches_name_either_way(repository, media_ids, settings_id):
    a, b, c = media_ids
    repository.save_match(a_match(a, b, settings_id))
    repository.save_match(a_match(c, a, settings_id))
    repository.save_match(a_match(b, c, repository.get_or_create_settings("other", "phash64", {})))
    assert repository.linked_media([a, b, c], settings_id) == {a: {b, c}, b: {a}, c: {a}}
    assert repository.linked_media([b], settings_id) == {b: {a}}  # b-c is another setting's
    assert repository.linked_media([b], settings_id, hops=2) == {b: {a, c}}  # through a
    assert repository.linked_media([b], settings_id, hops=0) == {b: set()}
    assert repository.linked_media([], settings_id) == {}


def test_watches_by_id_in_one_lookup(repository):
    first = repository.add_watch("https://example.org/feed.xml", "rss", "Example feed", 600)
    second = repository.add_watch("https://t.me/s/example", "telegram", None, 600)
    assert repository.watches_by_id([first.id, None, second.id, first.id, 999]) == {first.id: first,
                                                                                  second.id: second}
    assert repository.watches_by_id([None]) == {}


def test_a_media_cannot_match_itself(repository, media_ids, settings_id):
    with pytest.raises(ValueError, match="cannot match itself"):
        repository.save_match(a_match(media_ids[0], media_ids[0], settings_id))


# --- watches, polls, items -------------------------------------------------------


def test_watch_lifecycle(repository):
    watch = repository.add_watch("https://example.org/feed.xml", "rss", "Example feed", 600)
    assert watch.enabled and watch.interval_seconds == 600 and watch.label == "Example feed"
    assert watch.created_at.tzinfo is not None and watch.last_polled_at is None
    other = repository.add_watch("https://example.org/@someone", "listing", None, 3600)
    assert repository.get_watch(watch.id) == watch

    assert repository.set_watch_enabled(other.id, False).enabled is False
    assert [w.id for w in repository.list_watches()] == [watch.id, other.id]
    assert [w.id for w in repository.list_watches(enabled_only=True)] == [watch.id]

    polled_at = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    repository.mark_watch_polled(watch.id, polled_at)
    assert repository.get_watch(watch.id).last_polled_at == polled_at

    repository.remove_watch(other.id)
    assert repository.get_watch(other.id) is None


def test_unknown_watch_ids_raise_not_found(repository):
    for call in (
        lambda: repository.remove_watch(404),
        lambda: repository.set_watch_enabled(404, True),
        lambda: repository.mark_watch_polled(404, datetime.now(UTC)),
        lambda: repository.start_poll(404),
    ):
        with pytest.raises(NotFound, match="no watch with id 404"):
            call()
    assert issubclass(NotFound, KeyError)


def test_bad_watch_arguments_are_refused(repository):
    with pytest.raises(ValueError, match="unknown watch kind 'ftp'"):
        repository.add_watch("u", "ftp", None, 60)
    with pytest.raises(ValueError, match="positive"):
        repository.add_watch("u", "rss", None, 0)


def test_polls_are_recorded_newest_first(repository):
    watch = repository.add_watch("u", "rss", None, 60)
    other = repository.add_watch("v", "rss", None, 60)
    first = repository.start_poll(watch.id)
    assert first.status == "running" and first.finished_at is None and first.errors == []
    finished = repository.finish_poll(first.id, 5, 2, 1, [{"url": "x", "error": "404"}], "partial")
    assert finished.status == "partial" and finished.items_seen == 5 and finished.items_new == 2
    assert finished.errors == [{"url": "x", "error": "404"}]
    assert finished.finished_at >= finished.started_at
    second = repository.start_poll(watch.id)
    repository.start_poll(other.id)

    assert [p.id for p in repository.list_polls(watch.id)] == [second.id, first.id]
    assert len(repository.list_polls()) == 3
    assert len(repository.list_polls(limit=1)) == 1
    with pytest.raises(ValueError, match="not one of ok, partial, failed"):
        repository.finish_poll(second.id, 0, 0, 0, [], "running")
    with pytest.raises(NotFound):
        repository.finish_poll(9999, 0, 0, 0, [], "ok")


def test_watch_items_track_attempts_and_retries(repository, media_ids):
    watch = repository.add_watch("u", "listing", None, 60)
    now = datetime.now(UTC)
    assert repository.get_watch_item(watch.id, "youtube a") is None

    failed = repository.record_item_failed(watch.id, "youtube a", "https://y/a", "HTTP 429", now - timedelta(seconds=1))
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "HTTP 429")
    failed = repository.record_item_failed(watch.id, "youtube a", "https://y/a", "HTTP 500", now + timedelta(hours=1))
    assert (failed.attempts, failed.last_error) == (2, "HTTP 500")
    repository.record_item_failed(watch.id, "youtube b", "https://y/b", "gone", now - timedelta(minutes=5))
    repository.record_item_failed(watch.id, "youtube c", "https://y/c", "private", None)

    assert [i.archive_key for i in repository.items_due_for_retry(watch.id, now)] == ["youtube b"]
    assert [i.archive_key for i in repository.items_due_for_retry(watch.id, now + timedelta(hours=2))] == [
        "youtube b",
        "youtube a",
    ]

    post = repository.add_post(NewPost(media_id=media_ids[0], url="https://y/a", watch_id=watch.id))
    stored = repository.record_item_stored(watch.id, "youtube a", "https://y/a", post.id)
    assert (stored.status, stored.attempts, stored.post_id) == ("stored", 3, post.id)
    assert stored.last_error is None and stored.next_attempt_at is None
    assert stored.last_attempt_at.tzinfo is not None
    assert repository.get_watch_item(watch.id, "youtube a") == stored
    assert "youtube a" not in [i.archive_key for i in repository.items_due_for_retry(watch.id, now + timedelta(days=1))]


def test_removing_a_watch_keeps_its_posts(repository, media_ids):
    watch = repository.add_watch("u", "listing", None, 60)
    post = repository.add_post(NewPost(media_id=media_ids[0], url="p", watch_id=watch.id))
    repository.record_item_stored(watch.id, "k", "p", post.id)
    repository.start_poll(watch.id)
    repository.remove_watch(watch.id)
    assert repository.get_post(post.id).watch_id is None
    assert repository.get_watch_item(watch.id, "k") is None
    assert repository.list_polls(watch.id) == []


# --- daemon lock -----------------------------------------------------------------


def test_lock_is_exclusive_between_holders(repository):
    assert repository.acquire_lock("scheduler", "host-a:1", stale_after_seconds=60)
    assert not repository.acquire_lock("scheduler", "host-b:2", stale_after_seconds=60)
    assert repository.acquire_lock("scheduler", "host-a:1", stale_after_seconds=60)  # re-entrant
    assert repository.heartbeat_lock("scheduler", "host-a:1")
    assert not repository.heartbeat_lock("scheduler", "host-b:2")

    repository.release_lock("scheduler", "host-b:2")  # not the holder: no effect
    assert not repository.acquire_lock("scheduler", "host-b:2", stale_after_seconds=60)
    repository.release_lock("scheduler", "host-a:1")
    assert repository.acquire_lock("scheduler", "host-b:2", stale_after_seconds=60)
    assert repository.acquire_lock("other-lock", "host-a:1", stale_after_seconds=60)


def test_stale_lock_can_be_taken_over(repository):
    assert repository.acquire_lock("scheduler", "old", stale_after_seconds=60)
    assert not repository.acquire_lock("scheduler", "new", stale_after_seconds=60)
    # A zero staleness window makes any earlier heartbeat stale.
    assert repository.acquire_lock("scheduler", "new", stale_after_seconds=0)
    assert not repository.heartbeat_lock("scheduler", "old")
    assert repository.heartbeat_lock("scheduler", "new")
    assert not repository.acquire_lock("scheduler", "old", stale_after_seconds=60)


def test_lock_race_has_exactly_one_winner(database):
    from concurrent.futures import ThreadPoolExecutor

    repositories = [SqlRepository(database) for _ in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(
            pool.map(lambda pair: pair[1].acquire_lock("race", f"holder-{pair[0]}", 60), enumerate(repositories))
        )
    assert results.count(True) == 1


def test_lock_holder_and_post_counts_by_watch(repository):
    assert repository.lock_holder("daemon") is None
    assert repository.acquire_lock("daemon", "host:1:abc", stale_after_seconds=60)
    holder, heartbeat = repository.lock_holder("daemon")
    assert holder == "host:1:abc" and heartbeat.tzinfo is not None
    assert repository.post_counts_by_watch() == {}


def test_counting_unfingerprinted_media_is_cheap_while_one_setting_exists(repository, media_ids, settings_id):
    """Every cold command asks; with one setting (every ingest fingerprints in its transaction) the media
    table is not read at all, and after a change of settings two counts answer."""
    import sqlalchemy as sa

    for media_id in media_ids:
        repository.add_fingerprint(media_id, settings_id, [], frames_decoded=1, details={})
    statements: list[str] = []

    def note(conn, cursor, statement, *args) -> None:
        statements.append(statement.lower())

    engine = repository.database.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        assert repository.count_media_without_fingerprint(settings_id) == 0
        assert statements and not any(" media " in s or "media_fingerprints" in s for s in statements), statements
        newer = repository.get_or_create_settings("phash64-v2-0000", "phash64", {"analysis_fps": 4.0})
        repository.add_fingerprint(media_ids[1], newer, [], frames_decoded=1, details={})
        statements.clear()
        assert repository.count_media_without_fingerprint(newer) == 2
        assert not any(" not in " in s for s in statements), statements
        assert len(repository.media_without_fingerprint(newer)) == 2
        assert repository.count_media_without_fingerprint(settings_id) == 0
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
