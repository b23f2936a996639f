"""Browsing the store: posts by search, one post or media with everything known about it, footage groups.

The CLI (`provenance posts`, `media show`, `footage`) and the web pages read
the same records through these functions.  Searches are single SQL queries
(see `storage.workspace_repository`); footage groups are the connected
components of the stored matches graph, built from two integer columns of
`matches` and a GROUP BY over `posts`, never from frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from monitor.jobs.matching import stored_match_views
from monitor.workspace import MatchView, Workspace
from storage import NotFound
from storage.records import (AlertRecord, ClaimRecord, DeletionRecord, MediaRecord, MergeRecord, ObservationRecord,
                             PostRecord, PostSearch, TrackedRecord, WatchRecord)

SORTS = ("size", "newest")


class Ambiguous(ValueError):
    """A SHA-256 prefix that more than one stored file starts with."""


@dataclass
class RelatedMedia:
    """Another media linked to the one shown by a stored match (or the same bytes), with its posts."""

    view: MatchView
    posts: list[PostRecord]


@dataclass
class PostDetails:
    post: PostRecord
    media: MediaRecord
    claims: list[ClaimRecord]
    observations: list[ObservationRecord]
    watch: WatchRecord | None
    merged_into: MergeRecord | None  # this post is a duplicate of another
    merged_here: list[MergeRecord]  # duplicates merged into this post
    same_media_posts: list[PostRecord]  # other posts of the very same file
    related: list[RelatedMedia]  # matched media and their posts
    alerts: list[AlertRecord] = field(default_factory=list)


@dataclass
class MediaDetails:
    media: MediaRecord
    posts: list[PostRecord]
    fingerprinted: bool
    related: list[RelatedMedia]
    tracked: list[TrackedRecord]


@dataclass
class FootageGroup:
    """Posts that show the same footage: a connected component of media linked by stored matches."""

    id: int  # the smallest media id in the group: stable while the group does not change
    media_ids: list[int]
    posts: int
    earliest_claim: datetime | None
    first_seen: datetime
    last_seen: datetime
    tracked: list[TrackedRecord] = field(default_factory=list)
    sample: list[PostRecord] = field(default_factory=list)  # the group's posts, earliest claim first (a few)


def search_posts(ws: Workspace, search: PostSearch) -> tuple[list[PostRecord], dict[int, int]]:
    """The posts found, newest first, and for each merged one the post it is merged into."""
    posts = ws.repository.search_posts(search)
    merged = {m.post_id: m.into_post_id for m in ws.repository.merges_of_posts(p.id for p in posts)}
    return posts, {p.id: merged[p.id] for p in posts if p.id in merged}


def _related(ws: Workspace, media_id: int) -> list[RelatedMedia]:
    views = [v for v in stored_match_views(ws, media_id) if v.media is not None]
    by_media: dict[int, list[PostRecord]] = {}
    for p in ws.repository.posts_for_media(v.media.id for v in views):
        by_media.setdefault(p.media_id, []).append(p)
    return [RelatedMedia(v, by_media.get(v.media.id, [])) for v in views]


def post_details(ws: Workspace, post_id: int) -> PostDetails:
    repo = ws.repository
    post = repo.get_post(post_id)
    if post is None:
        raise NotFound(f"no post with id {post_id}; search them with `provenance posts`")
    merges = repo.merges_of_posts([post_id])
    alerts = repo.list_alerts(limit=1000, post_id=post_id)
    return PostDetails(
        post=post, media=repo.get_media(post.media_id), claims=repo.claims_for_posts([post_id]).get(post_id, []),
        observations=repo.observations_for_posts([post_id]).get(post_id, []),
        watch=repo.get_watch(post.watch_id) if post.watch_id is not None else None,
        merged_into=next((m for m in merges if m.post_id == post_id), None),
        merged_here=[m for m in merges if m.into_post_id == post_id],
        same_media_posts=[p for p in repo.posts_for_media([post.media_id]) if p.id != post_id],
        related=_related(ws, post.media_id), alerts=alerts)


def find_media(ws: Workspace, sha256_prefix: str) -> MediaRecord:
    """The stored media whose SHA-256 is or starts with `sha256_prefix`; NotFound or Ambiguous otherwise."""
    found = ws.repository.media_by_sha256_prefix(sha256_prefix)
    if not found:
        deleted = [d for d in ws.repository.deletions_of(sha256_prefix.lower()) if d.kind == "media"] \
            if len(sha256_prefix) == 64 else []
        if deleted:
            d = deleted[-1]
            raise NotFound(f"media {sha256_prefix[:16]}… was deleted on {d.deleted_at:%Y-%m-%d %H:%M} UTC by "
                           f"{d.author} ({d.reason})")
        raise NotFound(f"no stored media has a SHA-256 starting with {sha256_prefix!r}")
    if len(found) > 1:
        raise Ambiguous(f"more than one stored media starts with {sha256_prefix!r} "
                        f"({', '.join(m.sha256[:16] + '…' for m in found)}, …): give more digits")
    return found[0]


def media_details(ws: Workspace, sha256_prefix: str) -> MediaDetails:
    media = find_media(ws, sha256_prefix)
    return MediaDetails(media=media, posts=ws.repository.posts_for_media([media.id]),
                        fingerprinted=ws.repository.has_fingerprint(media.id, ws.settings_id),
                        related=_related(ws, media.id), tracked=ws.repository.tracked_for_media([media.id]))


def _components(nodes: set[int], edges: list[tuple[int, int]]) -> dict[int, list[int]]:
    """Connected components (union-find with path halving), keyed by their smallest node."""
    parent = {n: n for n in nodes}

    def root(n: int) -> int:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in edges:
        if a in parent and b in parent:
            ra, rb = root(a), root(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for n in sorted(nodes):
        groups.setdefault(root(n), []).append(n)
    return {min(members): members for members in groups.values()}


def footage_of(ws: Workspace) -> dict[int, frozenset[int]]:
    """Each media with a stored match, mapped to every media of its footage group (the connected component of
    the stored matches: copies of copies are the same footage)."""
    edges = ws.repository.match_edges(ws.settings_id)
    groups = _components({m for edge in edges for m in edge}, edges)
    return {m: frozenset(members) for members in groups.values() for m in members}


def footage_groups(ws: Workspace, min_posts: int = 2, sort: str = "size", limit: int = 50,
                   media_ids: set[int] | None = None, sample: int = 5) -> list[FootageGroup]:
    """Groups of posts that show the same footage, largest (or newest) first.

    `media_ids` keeps only the groups holding one of them (e.g. the media of
    the posts a search found).  Merged duplicates are not counted.
    """
    if sort not in SORTS:
        raise ValueError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    stats = ws.repository.posts_by_media()
    edges = ws.repository.match_edges(ws.settings_id)
    # media without posts of their own (all merged away) still link the footage on either side of them
    components = _components(set(stats) | {m for edge in edges for m in edge}, edges)
    groups = []
    for members in components.values():
        members = [m for m in members if m in stats]
        rows = [stats[m] for m in members]
        posts = sum(r.posts for r in rows)
        if posts < min_posts or (media_ids is not None and not media_ids & set(members)):
            continue
        claims = [r.earliest_claim for r in rows if r.earliest_claim is not None]
        groups.append(FootageGroup(members[0], members, posts, min(claims) if claims else None,
                                   min(r.first_seen for r in rows), max(r.last_seen for r in rows)))
    if sort == "size":
        groups.sort(key=lambda g: (-g.posts, -len(g.media_ids), -g.last_seen.timestamp(), g.id))
    else:
        groups.sort(key=lambda g: (-g.last_seen.timestamp(), -g.posts, g.id))
    groups = groups[:max(limit, 0)]
    shown = {m for g in groups for m in g.media_ids}
    tracked = ws.repository.tracked_for_media(shown)
    posts_of = {}
    if sample:
        for p in ws.repository.posts_for_media(shown):
            posts_of.setdefault(p.media_id, []).append(p)
    for g in groups:
        g.tracked = [t for t in tracked if t.media_id in g.media_ids]
        found = sorted((p for m in g.media_ids for p in posts_of.get(m, [])),
                       key=lambda p: (p.published_at is None, p.published_at or p.first_seen_at, p.id))
        g.sample = found[:sample]
    return groups


def footage_group_of(ws: Workspace, media_id: int) -> FootageGroup | None:
    """The group a media belongs to (even a single post), or None when the media has no post."""
    found = footage_groups(ws, min_posts=1, limit=1 << 30, media_ids={media_id}, sample=1000)
    return found[0] if found else None


def deletions(ws: Workspace, limit: int = 50) -> list[DeletionRecord]:
    return ws.repository.list_deletions(limit)
