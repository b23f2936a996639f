"""The repository's half for the investigator's workspace: search, corrections, deletions, tracking, alerts, accounts.

A mix-in of `SqlRepository` (same sessions, same transactions), kept in its
own module because it is its own subject: people browsing and correcting the
store.  Its rules: a correction never edits what a platform said (user claims
and merges are rows of their own); a deletion removes every row that names the
deleted media or post in one transaction and leaves a `deletions` row; every
search is one SQL query on indexed columns (substrings of URLs, titles and
descriptions use trigram indexes on PostgreSQL), never a scan in Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from storage.errors import NotFound, StorageError
from storage.models import (
    AlertDeliveryModel,
    AlertModel,
    AuditModel,
    ClaimModel,
    DeletionModel,
    FrameModel,
    MatchModel,
    MediaFingerprintModel,
    MediaModel,
    MediaSignalModel,
    ObservationModel,
    PostMergeModel,
    PostModel,
    TrackedModel,
    UserModel,
    WatchModel,
    utcnow,
)
from storage.records import (
    ALERT_MATCH,
    ALERT_TRACKED,
    CLAIM_SOURCE_USER,
    DELETED_MEDIA,
    DELETED_POST,
    PRECISIONS,
    ROLES,
    AlertDeliveryRecord,
    AlertRecord,
    AuditRecord,
    ClaimRecord,
    DeletionRecord,
    MediaPosts,
    MediaRecord,
    MergeRecord,
    PostRecord,
    PostSearch,
    TrackedRecord,
    UserRecord,
)

SHA256_PREFIX_MIN = 4
_HEX = set("0123456789abcdef")


def _record(cls, row) -> Any:
    return cls(**{f.name: getattr(row, f.name) for f in fields(cls) if hasattr(row, f.name)})


def _aware(name: str, value: datetime | None) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware (UTC), got naive {value.isoformat()}")


def _required(name: str, value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise ValueError(f"{name} is required: say who and why, it is part of the trail")
    return text


def _contains(column, text: str):
    """A case-insensitive substring test that SQL runs (on PostgreSQL, trigram indexes serve it)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


class WorkspaceRepository:
    """Mixed into `SqlRepository`: uses its `_session()` (one transaction per call, or the bound one)."""

    # --- search -------------------------------------------------------------

    def _post_filters(self, search: PostSearch) -> list:
        where = []
        if search.url:
            where.append(_contains(PostModel.url, search.url))
        if search.text:
            where.append(sa.or_(_contains(PostModel.title, search.text), _contains(PostModel.description, search.text)))
        if search.uploader:
            where.append(sa.or_(PostModel.uploader == search.uploader, PostModel.uploader_id == search.uploader))
        if search.platform:
            where.append(PostModel.platform == search.platform)
        if search.watch_ids is not None:
            where.append(PostModel.watch_id.in_(search.watch_ids))
        if search.media_ids is not None:
            where.append(PostModel.media_id.in_(search.media_ids))
        for name, column, op in (("claimed_from", PostModel.published_at, "ge"),
                                 ("claimed_to", PostModel.published_at, "lt"),
                                 ("seen_from", PostModel.first_seen_at, "ge"),
                                 ("seen_to", PostModel.first_seen_at, "lt")):
            value = getattr(search, name)
            _aware(name, value)
            if value is not None:
                where.append(column >= value if op == "ge" else column < value)
        if not search.include_merged:
            where.append(~sa.exists().where(PostMergeModel.post_id == PostModel.id))
        return where

    def search_posts(self, search: PostSearch) -> list[PostRecord]:
        """Posts that match every given field, newest first (by first sighting), one SQL query."""
        query = (sa.select(PostModel).where(*self._post_filters(search))
                 .order_by(PostModel.first_seen_at.desc(), PostModel.id.desc())
                 .limit(max(search.limit, 0)).offset(max(search.offset, 0)))
        with self._session() as session:
            return [_record(PostRecord, row) for row in session.scalars(query)]

    def count_posts_matching(self, search: PostSearch) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(PostModel)
                                  .where(*self._post_filters(search))) or 0

    def watch_ids_labelled(self, label: str) -> list[int]:
        """Ids of the watches whose label is `label` (case-insensitive)."""
        with self._session() as session:
            return list(session.scalars(sa.select(WatchModel.id).where(sa.func.lower(WatchModel.label) == label.lower())
                                        .order_by(WatchModel.id)))

    def media_by_sha256_prefix(self, prefix: str, limit: int = 2) -> list[MediaRecord]:
        """Media whose SHA-256 starts with `prefix` (a range on the unique index), at most `limit`."""
        prefix = prefix.strip().lower()
        if len(prefix) < SHA256_PREFIX_MIN or not set(prefix) <= _HEX or len(prefix) > 64:
            raise ValueError(f"{prefix!r} is not a SHA-256 or a prefix of one (at least {SHA256_PREFIX_MIN} "
                             "hex digits)")
        query = (sa.select(MediaModel).where(MediaModel.sha256 >= prefix, MediaModel.sha256 < prefix + "g")
                 .order_by(MediaModel.sha256).limit(limit))
        with self._session() as session:
            return [_record(MediaRecord, row) for row in session.scalars(query)]

    def posts_by_id(self, post_ids: Iterable[int]) -> dict[int, PostRecord]:
        ids = sorted(set(post_ids))
        if not ids:
            return {}
        with self._session() as session:
            return {row.id: _record(PostRecord, row)
                    for row in session.scalars(sa.select(PostModel).where(PostModel.id.in_(ids)))}

    def media_by_id(self, media_ids: Iterable[int]) -> dict[int, MediaRecord]:
        ids = sorted(set(media_ids))
        if not ids:
            return {}
        with self._session() as session:
            return {row.id: _record(MediaRecord, row)
                    for row in session.scalars(sa.select(MediaModel).where(MediaModel.id.in_(ids)))}

    # --- footage groups ----------------------------------------------------

    def match_edges(self, settings_id: int) -> list[tuple[int, int]]:
        """Every stored match of a setting as (media, media): two integer columns, no evidence, no frames."""
        with self._session() as session:
            return [(a, b) for a, b in session.execute(
                sa.select(MatchModel.query_media_id, MatchModel.stored_media_id)
                .where(MatchModel.settings_id == settings_id))]

    def posts_by_media(self, include_merged: bool = False) -> dict[int, MediaPosts]:
        """Each media's posts summed up by SQL (GROUP BY): count, earliest platform claim, first and last sighting."""
        query = (sa.select(PostModel.media_id, sa.func.count(), sa.func.min(PostModel.published_at),
                           sa.func.min(PostModel.first_seen_at), sa.func.max(PostModel.first_seen_at))
                 .group_by(PostModel.media_id))
        if not include_merged:
            query = query.where(~sa.exists().where(PostMergeModel.post_id == PostModel.id))
        with self._session() as session:
            return {media_id: MediaPosts(media_id, count, earliest, first, last)
                    for media_id, count, earliest, first, last in session.execute(query)}

    # --- user claims -------------------------------------------------------

    def add_claim(self, post_id: int, published_at: datetime, precision: str, author: str, reason: str,
                  correction: bool = False) -> ClaimRecord:
        """Record a person's claim for a post beside the platform's (which is never changed)."""
        _aware("published_at", published_at)
        if published_at is None:
            raise ValueError("a claim needs a publication time")
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        with self._session() as session:
            if session.get(PostModel, post_id) is None:
                raise NotFound(f"no post with id {post_id}; search them with `provenance posts`")
            row = ClaimModel(post_id=post_id, published_at=published_at, precision=precision,
                             source=CLAIM_SOURCE_USER, correction=correction, author=_required("author", author),
                             reason=_required("reason", reason), created_at=utcnow())
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(ClaimRecord, row)

    def claims_for_posts(self, post_ids: Iterable[int]) -> dict[int, list[ClaimRecord]]:
        """User claims of these posts, oldest first, by post id (posts without any are absent)."""
        ids = sorted(set(post_ids))
        found: dict[int, list[ClaimRecord]] = {}
        if not ids:
            return found
        with self._session() as session:
            for row in session.scalars(sa.select(ClaimModel).where(ClaimModel.post_id.in_(ids))
                                       .order_by(ClaimModel.created_at, ClaimModel.id)):
                found.setdefault(row.post_id, []).append(_record(ClaimRecord, row))
        return found

    # --- merges ------------------------------------------------------------

    def merge_post(self, post_id: int, into_post_id: int, author: str, reason: str) -> MergeRecord:
        """Mark `post_id` a duplicate of `into_post_id`; both rows stay, the survivor must not be merged itself."""
        if post_id == into_post_id:
            raise ValueError("a post cannot be merged into itself")
        with self._session() as session:
            for pid in (post_id, into_post_id):
                if session.get(PostModel, pid) is None:
                    raise NotFound(f"no post with id {pid}; search them with `provenance posts`")
            merged = {m.post_id: m.into_post_id for m in session.scalars(
                sa.select(PostMergeModel).where(PostMergeModel.post_id.in_([post_id, into_post_id])))}
            if post_id in merged:
                raise StorageError(f"post {post_id} is already merged into post {merged[post_id]}")
            if into_post_id in merged:
                raise StorageError(f"post {into_post_id} is itself merged into post {merged[into_post_id]}; "
                                   f"merge into post {merged[into_post_id]} instead")
            row = PostMergeModel(post_id=post_id, into_post_id=into_post_id, author=_required("author", author),
                                 reason=_required("reason", reason), created_at=utcnow())
            session.add(row)
            try:
                session.flush()
            except IntegrityError as error:
                raise StorageError(f"post {post_id} was merged meanwhile") from error
            # posts merged into the duplicate now point at its survivor: no chains
            session.execute(sa.update(PostMergeModel).where(PostMergeModel.into_post_id == post_id)
                            .values(into_post_id=into_post_id).execution_options(synchronize_session=False))
            session.refresh(row)
            return _record(MergeRecord, row)

    def merges_of_posts(self, post_ids: Iterable[int]) -> list[MergeRecord]:
        """Merges in which one of these posts is the duplicate or the survivor."""
        ids = sorted(set(post_ids))
        if not ids:
            return []
        with self._session() as session:
            rows = session.scalars(sa.select(PostMergeModel).where(sa.or_(PostMergeModel.post_id.in_(ids),
                                                                          PostMergeModel.into_post_id.in_(ids)))
                                   .order_by(PostMergeModel.id))
            return [_record(MergeRecord, row) for row in rows]

    # --- deletions ---------------------------------------------------------

    def _delete_post_rows(self, session, post_ids: list[int]) -> dict[str, int]:
        if not post_ids:
            return {}
        counts = {}
        for name, statement in (
            ("alerts", sa.delete(AlertModel).where(AlertModel.post_id.in_(post_ids))),
            ("claims", sa.delete(ClaimModel).where(ClaimModel.post_id.in_(post_ids))),
            ("merges", sa.delete(PostMergeModel).where(sa.or_(PostMergeModel.post_id.in_(post_ids),
                                                              PostMergeModel.into_post_id.in_(post_ids)))),
            ("observations", sa.delete(ObservationModel).where(ObservationModel.post_id.in_(post_ids))),
            ("posts", sa.delete(PostModel).where(PostModel.id.in_(post_ids))),
        ):
            counts[name] = session.execute(statement.execution_options(synchronize_session=False)).rowcount
        return counts

    def delete_media(self, media_id: int, author: str, reason: str) -> DeletionRecord:
        """Delete a media's rows: its posts (with their claims, merges, observations, alerts), frames,
        fingerprints, per-video signals, matches and tracked entries; record the deletion.  The file is the caller's to remove."""
        author, reason = _required("author", author), _required("reason", reason)
        with self._session() as session:
            media = session.get(MediaModel, media_id)
            if media is None:
                raise NotFound(f"no media with id {media_id}")
            posts = session.execute(sa.select(PostModel.id, PostModel.url).where(PostModel.media_id == media_id)
                                    .order_by(PostModel.id)).all()
            counts = self._delete_post_rows(session, [p for p, _ in posts])
            for name, statement in (
                ("alerts", sa.delete(AlertModel).where(AlertModel.media_id == media_id)),
                ("tracked", sa.delete(TrackedModel).where(TrackedModel.media_id == media_id)),
                ("frames", sa.delete(FrameModel).where(FrameModel.media_id == media_id)),
                ("fingerprints", sa.delete(MediaFingerprintModel).where(MediaFingerprintModel.media_id == media_id)),
                ("signals", sa.delete(MediaSignalModel).where(MediaSignalModel.media_id == media_id)),
                ("matches", sa.delete(MatchModel).where(sa.or_(MatchModel.query_media_id == media_id,
                                                               MatchModel.stored_media_id == media_id))),
            ):
                counts[name] = counts.get(name, 0) + session.execute(
                    statement.execution_options(synchronize_session=False)).rowcount
            session.execute(sa.update(AlertModel).where(AlertModel.matched_media_id == media_id)
                            .values(matched_media_id=None).execution_options(synchronize_session=False))
            sha256, store_path = media.sha256, media.store_path
            session.delete(media)
            row = DeletionModel(kind=DELETED_MEDIA, sha256=sha256, media_id=media_id, post_id=None, url=None,
                                author=author, reason=reason, deleted_at=utcnow(),
                                details={"store_path": store_path, "removed": counts,
                                         "posts": [{"id": p, "url": u} for p, u in posts]})
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(DeletionRecord, row)

    def delete_post(self, post_id: int, author: str, reason: str) -> DeletionRecord:
        """Delete one post's rows (its media stays: other posts show it); record the deletion."""
        author, reason = _required("author", author), _required("reason", reason)
        with self._session() as session:
            post = session.get(PostModel, post_id)
            if post is None:
                raise NotFound(f"no post with id {post_id}")
            sha256 = session.scalar(sa.select(MediaModel.sha256).where(MediaModel.id == post.media_id))
            media_id, url = post.media_id, post.url
            session.expunge(post)
            counts = self._delete_post_rows(session, [post_id])
            row = DeletionModel(kind=DELETED_POST, sha256=sha256, media_id=media_id, post_id=post_id, url=url,
                                author=author, reason=reason, deleted_at=utcnow(), details={"removed": counts})
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(DeletionRecord, row)

    def deletions_of(self, sha256: str) -> list[DeletionRecord]:
        """Deletions of these bytes (of the media, or of one of its posts), oldest first."""
        with self._session() as session:
            rows = session.scalars(sa.select(DeletionModel).where(DeletionModel.sha256 == sha256)
                                   .order_by(DeletionModel.id))
            return [_record(DeletionRecord, row) for row in rows]

    def list_deletions(self, limit: int = 50) -> list[DeletionRecord]:
        with self._session() as session:
            rows = session.scalars(sa.select(DeletionModel).order_by(DeletionModel.id.desc()).limit(limit))
            return [_record(DeletionRecord, row) for row in rows]

    def count_posts_of_media(self, media_id: int) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(PostModel)
                                  .where(PostModel.media_id == media_id)) or 0

    # --- tracked footage ---------------------------------------------------

    def add_tracked(self, media_id: int, label: str | None, source: str, author: str) -> TrackedRecord:
        """Put a stored media on the tracked list (an active entry for it is returned as it is)."""
        with self._session() as session:
            if session.get(MediaModel, media_id) is None:
                raise NotFound(f"no media with id {media_id}")
            existing = session.scalar(sa.select(TrackedModel).where(TrackedModel.media_id == media_id,
                                                                   TrackedModel.active.is_(True)))
            if existing is not None:
                return _record(TrackedRecord, existing)
            row = TrackedModel(media_id=media_id, label=label, source=source, author=_required("author", author),
                               active=True, created_at=utcnow())
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(TrackedRecord, row)

    def list_tracked(self, active_only: bool = True) -> list[TrackedRecord]:
        query = sa.select(TrackedModel).order_by(TrackedModel.id)
        if active_only:
            query = query.where(TrackedModel.active.is_(True))
        with self._session() as session:
            return [_record(TrackedRecord, row) for row in session.scalars(query)]

    def tracked_for_media(self, media_ids: Iterable[int]) -> list[TrackedRecord]:
        """Active tracked entries of these media (one indexed query)."""
        ids = sorted(set(media_ids))
        if not ids:
            return []
        with self._session() as session:
            rows = session.scalars(sa.select(TrackedModel).where(TrackedModel.media_id.in_(ids),
                                                                 TrackedModel.active.is_(True))
                                   .order_by(TrackedModel.id))
            return [_record(TrackedRecord, row) for row in rows]

    def get_tracked(self, tracked_id: int) -> TrackedRecord | None:
        with self._session() as session:
            row = session.get(TrackedModel, tracked_id)
            return _record(TrackedRecord, row) if row else None

    def stop_tracking(self, tracked_id: int, author: str) -> TrackedRecord:
        """Take footage off the list; the entry stays (inactive), with who took it off and when."""
        with self._session() as session:
            row = session.get(TrackedModel, tracked_id)
            if row is None:
                raise NotFound(f"no tracked footage with id {tracked_id}; see `provenance tracked`")
            if row.active:
                row.active, row.removed_at, row.removed_by = False, utcnow(), _required("author", author)
            session.flush()
            session.refresh(row)
            return _record(TrackedRecord, row)

    # --- alerts ------------------------------------------------------------

    def add_alert(self, kind: str, post_id: int, media_id: int, tracked_id: int | None,
                  matched_media_id: int | None, message: str) -> AlertRecord:
        if kind not in (ALERT_TRACKED, ALERT_MATCH):
            raise ValueError(f"alert kind {kind!r} is not one of {ALERT_TRACKED}, {ALERT_MATCH}")
        with self._session() as session:
            row = AlertModel(kind=kind, post_id=post_id, media_id=media_id, tracked_id=tracked_id,
                             matched_media_id=matched_media_id, message=message, created_at=utcnow())
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(AlertRecord, row)

    def add_alert_delivery(self, alert_id: int, target: str, ok: bool, error: str | None) -> AlertDeliveryRecord:
        with self._session() as session:
            row = AlertDeliveryModel(alert_id=alert_id, target=target, ok=ok, error=error, attempted_at=utcnow())
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(AlertDeliveryRecord, row)

    def list_alerts(self, unread_only: bool = False, limit: int = 50, after_id: int = 0,
                    post_id: int | None = None) -> list[AlertRecord]:
        """Alerts newest first (of one post, or all), each with its deliveries (two queries)."""
        query = sa.select(AlertModel).where(AlertModel.id > after_id).order_by(AlertModel.id.desc()).limit(limit)
        if unread_only:
            query = query.where(AlertModel.acked_at.is_(None))
        if post_id is not None:
            query = query.where(AlertModel.post_id == post_id)
        with self._session() as session:
            alerts = [_record(AlertRecord, row) for row in session.scalars(query)]
            deliveries: dict[int, list[AlertDeliveryRecord]] = {}
            if alerts:
                for row in session.scalars(sa.select(AlertDeliveryModel)
                                           .where(AlertDeliveryModel.alert_id.in_([a.id for a in alerts]))
                                           .order_by(AlertDeliveryModel.id)):
                    deliveries.setdefault(row.alert_id, []).append(_record(AlertDeliveryRecord, row))
        return [AlertRecord(**{**{f.name: getattr(a, f.name) for f in fields(a)},
                               "deliveries": tuple(deliveries.get(a.id, ()))}) for a in alerts]

    def count_unread_alerts(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(AlertModel)
                                  .where(AlertModel.acked_at.is_(None))) or 0

    def last_alert_id(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.max(AlertModel.id))) or 0

    def ack_alert(self, alert_id: int, author: str) -> AlertRecord:
        with self._session() as session:
            row = session.get(AlertModel, alert_id)
            if row is None:
                raise NotFound(f"no alert with id {alert_id}; see `provenance alerts`")
            if row.acked_at is None:
                row.acked_at, row.acked_by = utcnow(), _required("author", author)
            session.flush()
            session.refresh(row)
            return _record(AlertRecord, row)

    # --- accounts ----------------------------------------------------------

    def add_user(self, name: str, password_hash: str, role: str, created_by: str) -> UserRecord:
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        try:
            with self._session() as session:
                row = UserModel(name=_required("name", name), password_hash=password_hash, role=role,
                                created_at=utcnow(), created_by=created_by)
                session.add(row)
                session.flush()
                session.refresh(row)
                return _record(UserRecord, row)
        except IntegrityError as error:
            raise StorageError(f"a user named {name!r} exists already; remove it first or pick another name") \
                from error

    def get_user(self, user_id: int) -> UserRecord | None:
        with self._session() as session:
            row = session.get(UserModel, user_id)
            return _record(UserRecord, row) if row else None

    def user_named(self, name: str) -> UserRecord | None:
        with self._session() as session:
            row = session.scalar(sa.select(UserModel).where(UserModel.name == name))
            return _record(UserRecord, row) if row else None

    def password_hash(self, user_id: int) -> str | None:
        with self._session() as session:
            return session.scalar(sa.select(UserModel.password_hash).where(UserModel.id == user_id))

    def set_password_hash(self, user_id: int, password_hash: str) -> None:
        with self._session() as session:
            session.execute(sa.update(UserModel).where(UserModel.id == user_id).values(password_hash=password_hash))

    def list_users(self) -> list[UserRecord]:
        with self._session() as session:
            return [_record(UserRecord, row) for row in session.scalars(sa.select(UserModel).order_by(UserModel.id))]

    def count_users(self) -> int:
        with self._session() as session:
            return session.scalar(sa.select(sa.func.count()).select_from(UserModel)) or 0

    def remove_user(self, name: str) -> UserRecord:
        with self._session() as session:
            row = session.scalar(sa.select(UserModel).where(UserModel.name == name))
            if row is None:
                raise NotFound(f"no user named {name!r}; see `provenance users list`")
            record = _record(UserRecord, row)
            session.delete(row)
            return record

    # --- audit -------------------------------------------------------------

    def add_audit(self, actor: str, via: str, action: str, target: str | None,
                  details: dict[str, Any] | None = None) -> AuditRecord:
        with self._session() as session:
            row = AuditModel(at=utcnow(), actor=_required("actor", actor), via=via, action=action, target=target,
                             details=details or {})
            session.add(row)
            session.flush()
            session.refresh(row)
            return _record(AuditRecord, row)

    def list_audit(self, limit: int = 50, target: str | None = None) -> list[AuditRecord]:
        query = sa.select(AuditModel).order_by(AuditModel.id.desc()).limit(limit)
        if target is not None:
            query = query.where(AuditModel.target == target)
        with self._session() as session:
            return [_record(AuditRecord, row) for row in session.scalars(query)]
