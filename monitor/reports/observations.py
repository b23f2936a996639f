"""What revisits saw of a post, for reports: a JSON list, and lines for people.

Pure functions over `storage.records.ObservationRecord`s (oldest first), so
every report format shows the same facts.  An observation is ours, not the
platform's claim: "removed between A and B" means we saw the post up at A
(the last time before it was gone) and gone at B; when exactly it went is not
known, only that it was within that span.  `unreachable` says nothing about
the post, so it never opens or closes such a span.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.records import (
    STATUS_GEO_BLOCKED,
    STATUS_PRIVATE,
    STATUS_REMOVED,
    STATUS_UNREACHABLE,
    STATUS_UP,
    ObservationRecord,
    PostRecord,
)

GONE_WORDS = {STATUS_REMOVED: "removed", STATUS_PRIVATE: "made private", STATUS_GEO_BLOCKED: "geo-blocked"}
COUNT_NAMES = {"view_count": "views", "like_count": "likes", "repost_count": "reposts", "comment_count": "comments"}
QUOTE_LIMIT = 120  # characters of an old or new text shown in a line (the JSON has them whole)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def _when(at: datetime | str | None) -> str:
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at else "?"


def observation_json(o: ObservationRecord) -> dict[str, Any]:
    """One observation for the JSON report: when, what status, how, and what changed."""
    return {
        "observed_at": _iso(o.observed_at),
        "status": o.status,
        "method": o.method,
        "tool": o.tool,
        "http_status": o.http_status,
        "error_kind": o.error_kind,
        "error": o.error,
        "title": o.title,
        "description": o.description,
        "counts": {name: getattr(o, field) for field, name in COUNT_NAMES.items() if getattr(o, field) is not None},
        "changes": o.changes,
        "media_changed": o.media_changed,
        "media": o.media,
    }


def observations_json(observations: list[ObservationRecord]) -> list[dict[str, Any]]:
    return [observation_json(o) for o in observations]


def _quote(text: Any) -> str:
    text = " ".join(str(text).split())
    return repr(text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 1] + "…")


def _gone_reason(o: ObservationRecord) -> str:
    return f" ({o.error_kind})" if o.error_kind else ""


def history_lines(post: PostRecord, observations: list[ObservationRecord]) -> list[str]:
    """What revisits saw, oldest first: when the post went and came back, and every edit.

    The post's own first sighting counts as "up" only when it was downloaded
    from its URL (yt-dlp metadata stored), not when a file was ingested with a URL typed by a user.
    """
    lines: list[str] = []
    downloaded = bool((post.raw_metadata or {}).get("yt_dlp"))
    last_up: datetime | None = post.first_seen_at if downloaded else None
    state = STATUS_UP if downloaded else None
    last_in_state: datetime | None = None
    for o in observations:
        for key in ("title", "description"):
            change = o.changes.get(key)
            if change:
                lines.append(f"{key} changed between {_when(change.get('old_seen_at'))} and {_when(o.observed_at)}: "
                             f"{_quote(change['old'])} → {_quote(change['new'])}")
        media = o.changes.get("media")
        if media:
            what = "; ".join(f"{k} {v['old']} → {v['new']}" for k, v in sorted(media.items()))
            lines.append(f"the file as described by the platform changed between {_when(_old_last_seen(media))} and "
                         f"{_when(o.observed_at)} ({what}): not downloaded again; download it to compare")
        if o.status == STATUS_UNREACHABLE:
            continue
        if o.status != state:
            if o.status in GONE_WORDS:
                since = f"between {_when(last_up)} and" if last_up else "by"
                lines.append(f"{GONE_WORDS[o.status]} {since} {_when(o.observed_at)}{_gone_reason(o)}")
            elif state in GONE_WORDS:
                lines.append(f"up again between {_when(last_in_state)} and {_when(o.observed_at)}")
            state = o.status
        last_in_state = o.observed_at
        if o.status == STATUS_UP:
            last_up = o.observed_at
    if observations:
        last = observations[-1]
        counts = ", ".join(f"{getattr(last, f)} {n}" for f, n in COUNT_NAMES.items() if getattr(last, f) is not None)
        lines.append(f"{len(observations)} revisit{'s' if len(observations) != 1 else ''}; last {_when(last.observed_at)}: "
                     f"{last.status}" + (f" ({counts})" if counts else "") + f", by {last.method}")
    return lines


def _old_last_seen(media_changes: dict[str, Any]) -> str | None:
    seen = [v.get("old_seen_at") for v in media_changes.values() if v.get("old_seen_at")]
    return max(seen) if seen else None
