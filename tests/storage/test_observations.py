"""Observations in the repository, on SQLite and PostgreSQL: only ever added, listed in order, scheduled by post."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from storage import NotFound
from storage.records import METHOD_HTTP_HEAD, METHOD_YTDLP_METADATA, NewObservation, NewPost
from tests.storage.test_repository import new_media

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc)


def seen(post_id: int, hours: float, status: str = "up", **fields) -> NewObservation:
    return NewObservation(post_id=post_id, observed_at=T0 + timedelta(hours=hours), status=status,
                          method=METHOD_YTDLP_METADATA, tool="test", **fields)


def test_observations_are_added_and_listed_oldest_first_by_post(repository):
    media = repository.add_media(new_media())
    a = repository.add_post(NewPost(media_id=media.id, url="https://example.org/a", first_seen_at=T0))
    b = repository.add_post(NewPost(media_id=media.id, url="http://example.org/b", first_seen_at=T0))
    local = repository.add_post(NewPost(media_id=media.id, url="file:///tmp/c.mp4", first_seen_at=T0))
    later = repository.add_observation(seen(a.id, 2, "removed", http_status=404, error_kind="http-404",
                                            error="HTTP 404 Not Found"))
    first = repository.add_observation(seen(a.id, 1, title="Old", view_count=10,
                                            changes={"title": {"old": "x", "new": "Old", "old_seen_at": None}},
                                            media={"duration": 12.5}, details={"info": {"id": "a"}}))
    repository.add_observation(NewObservation(post_id=b.id, observed_at=T0 + timedelta(hours=5), status="up",
                                              method=METHOD_HTTP_HEAD, tool="test", media_changed=True))

    found = repository.observations_for_posts([a.id, b.id, local.id])
    assert [o.id for o in found[a.id]] == [first.id, later.id] and local.id not in found
    assert found[a.id][0] == first and first.title == "Old" and first.changes["title"]["new"] == "Old"
    assert (later.http_status, later.error_kind) == (404, "http-404")
    assert found[b.id][0].media_changed is True
    assert repository.count_observations() == 3 and repository.count_posts() == 3

    states = {s.post_id: s for s in repository.revisit_states()}
    assert set(states) == {a.id, b.id}  # file:// posts are never revisited
    assert states[a.id].last_observed_at == T0 + timedelta(hours=2)
    assert states[b.id].last_observed_at == T0 + timedelta(hours=5) and states[b.id].first_seen_at == T0


def test_bad_observations_are_refused(repository, database):
    media = repository.add_media(new_media())
    post = repository.add_post(NewPost(media_id=media.id, url="https://example.org/a"))
    with pytest.raises(ValueError, match="not one of"):
        repository.add_observation(seen(post.id, 1, "gone"))
    with pytest.raises(ValueError, match="timezone-aware"):
        repository.add_observation(NewObservation(post_id=post.id, observed_at=datetime(2024, 3, 1), status="up",
                                                  method=METHOD_HTTP_HEAD, tool="test"))
    with pytest.raises(NotFound):
        repository.add_observation(seen(post.id + 1000, 1))
    with pytest.raises(sa.exc.IntegrityError):  # the database refuses an unknown status too
        with database.engine.begin() as connection:
            connection.execute(sa.text(
                "INSERT INTO observations (post_id, observed_at, status, method, tool, media, changes,"
                " media_changed, details) VALUES (:post, :at, 'gone', 'm', 't', '{}', '{}', false, '{}')"),
                {"post": post.id, "at": T0.replace(tzinfo=None)})
    assert repository.count_observations() == 0
