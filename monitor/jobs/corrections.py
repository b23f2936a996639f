"""Corrections with a trail: a person's claim beside the platform's, duplicate posts merged, media and posts deleted.

Every correction is one transaction that also writes its `audit` row (who,
through which door, what, why), so a change and its trail are stored together
or not at all.  Nothing a platform said is ever edited: a user claim is a row
of its own (the report shows it, and orders by it only when the person marks
it a correction), a merge marks the duplicate and keeps both posts.  A
deletion is the one thing that removes evidence, on purpose: the file leaves
the media store and every frame index (so find-earliest can never return it),
its rows leave the database, and a `deletions` row keeps its SHA-256, who,
when and why; the same bytes are then refused on ingest unless allowed.
"""

from __future__ import annotations

import getpass
import logging
from dataclasses import dataclass
from datetime import datetime

from monitor.workspace import Workspace
from storage import StorageError
from storage.records import (DELETED_MEDIA, ClaimRecord, DeletionRecord, MergeRecord)

log = logging.getLogger("provenance.corrections")

VIA_CLI = "cli"
VIA_WEB = "web"


@dataclass(frozen=True)
class Actor:
    """Who makes a change, and through which door: a web account, or a person at the command line."""

    name: str
    via: str  # VIA_CLI or VIA_WEB

    @classmethod
    def at_cli(cls, name: str | None = None) -> Actor:
        """`name`, else the operating-system user running the command."""
        if not name:
            try:
                name = getpass.getuser()
            except (KeyError, OSError):
                name = "unknown"
        return cls(name, VIA_CLI)


class DeletedBytes(StorageError):
    """These bytes (or this post of them) were deleted on purpose; storing them again needs to be allowed."""

    def __init__(self, deletion: DeletionRecord) -> None:
        self.deletion = deletion
        what = "this file" if deletion.kind == DELETED_MEDIA else f"this file's post at {deletion.url}"
        super().__init__(
            f"refused: {what} was deleted on {deletion.deleted_at:%Y-%m-%d %H:%M} UTC by {deletion.author} "
            f"({deletion.reason}) (sha256 {deletion.sha256[:16]}…); to store it again anyway, ingest it with "
            "--allow-deleted")


def deletion_refusing(ws: Workspace, sha256: str, url: str) -> DeletionRecord | None:
    """The deletion that makes ingest refuse these bytes at this URL, if any: the media was deleted (and
    is not stored again), or this very post of it was."""
    if ws.repository.get_media_by_sha256(sha256) is not None:
        found = [d for d in ws.repository.deletions_of(sha256) if d.kind != DELETED_MEDIA and d.url == url]
    else:
        found = [d for d in ws.repository.deletions_of(sha256) if d.kind == DELETED_MEDIA or d.url == url]
    return found[-1] if found else None


def add_claim(ws: Workspace, actor: Actor, post_id: int, published_at: datetime, precision: str, reason: str,
              correction: bool = False) -> ClaimRecord:
    """A person's publication time for a post, kept beside the platform's claim."""
    with ws.repository.transaction() as repo:
        claim = repo.add_claim(post_id, published_at, precision, actor.name, reason, correction)
        repo.add_audit(actor.name, actor.via, "claim.add", f"post {post_id}",
                       {"claim_id": claim.id, "published_at": published_at.isoformat(), "precision": precision,
                        "correction": correction, "reason": reason})
    return claim


def merge_posts(ws: Workspace, actor: Actor, post_id: int, into_post_id: int, reason: str) -> MergeRecord:
    """Mark post `post_id` a duplicate of `into_post_id`; both rows stay."""
    with ws.repository.transaction() as repo:
        merge = repo.merge_post(post_id, into_post_id, actor.name, reason)
        repo.add_audit(actor.name, actor.via, "post.merge", f"post {post_id}",
                       {"into_post_id": into_post_id, "reason": reason})
    return merge


def delete_media(ws: Workspace, actor: Actor, media_id: int, reason: str) -> DeletionRecord:
    """Delete a media file with all its posts: from the database, the frame indexes and the media store."""
    ws.indexes()  # caught up first: no process can append the media's rows after its tombstone
    ws.signal_indexes()
    with ws.repository.transaction(ws.settings_id) as repo:
        deletion = repo.delete_media(media_id, actor.name, reason)
        repo.add_audit(actor.name, actor.via, "media.delete", f"media {media_id}",
                       {"sha256": deletion.sha256, "deletion_id": deletion.id, "reason": reason,
                        "posts": deletion.details.get("posts", [])})
        ws.forget_media(media_id)
    removed = ws.store.remove(deletion.details["store_path"])
    log.info("media deleted media=%s sha256=%s file_removed=%s by=%s", media_id, deletion.sha256[:12], removed,
             actor.name)
    return deletion


def delete_post(ws: Workspace, actor: Actor, post_id: int, reason: str) -> DeletionRecord:
    """Delete a post; when it is the last post of its media, the media goes with it (as `delete_media`)."""
    post = ws.repository.get_post(post_id)
    if post is None:
        from storage import NotFound

        raise NotFound(f"no post with id {post_id}; search them with `provenance posts`")
    if ws.repository.count_posts_of_media(post.media_id) <= 1:
        return delete_media(ws, actor, post.media_id, reason)
    with ws.repository.transaction() as repo:
        deletion = repo.delete_post(post_id, actor.name, reason)
        repo.add_audit(actor.name, actor.via, "post.delete", f"post {post_id}",
                       {"sha256": deletion.sha256, "url": deletion.url, "deletion_id": deletion.id,
                        "reason": reason})
    return deletion
