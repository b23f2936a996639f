"""find-earliest: every stored appearance of some footage, earliest credible claim first.

Ordering rules (the provenance model, see docs/provenance.md):
- appearances with a claimed publication time come first, by that time;
- a day-precision claim covers the whole UTC day, so it cannot be ordered
  against another claim on the same day: both are flagged `ambiguous`, and
  the order between them is not evidence;
- appearances with no claim come last, by when we first saw them, flagged
  `no claimed time`;
- a claim later than our own first sighting is flagged, since a post cannot
  be published after we saw it (edited dates, re-posts that reset the date);
- a person's claim (`provenance posts claim`) is shown beside the
  platform's; only one marked a correction replaces the platform's claim as
  the order key, and the appearance is then flagged `user correction`.

The report is the whole model `monitor.reports` renders: reports never read
the database.  What they need beyond the matches to the query (each post's
watch, the stored matches between the appearances themselves, revisit
observations) is fetched here, by `load_report_context`, in a fixed number of
queries whatever the number of appearances.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fingerprints.align import VideoMatch
from fingerprints.edits import PictureEdits
from monitor.analysis import AnalysedFile, InputError, analyse_file
from monitor.jobs.edits import explain_appearances
from monitor.jobs.ingest import ingest_analysed, stored_fingerprinted_media
from monitor.jobs.matching import find_matches, stored_match_views, stored_matches_among
from monitor.workspace import MatchView, Workspace
from storage.records import (PRECISION_DAY, ClaimRecord, MediaRecord, ObservationRecord, PostRecord,
                             WatchRecord)

FLAG_AMBIGUOUS = "ambiguous"
FLAG_NO_CLAIM = "no claimed time"
FLAG_CLAIM_AFTER_SEEN = "claimed time later than first seen"
FLAG_EXACT = "identical file"
FLAG_USER_CORRECTION = "user correction"  # ordered by a person's correction, not the platform's claim

ORDERED_BY_PLATFORM = "platform claim"
ORDERED_BY_CORRECTION = "user correction"
ORDERED_BY_FIRST_SEEN = "first seen"


@dataclass(frozen=True)
class Claim:
    """The claim an appearance is ordered by: the platform's, or a person's correction of it."""

    at: datetime
    precision: str
    source: str
    correction: ClaimRecord | None = None  # set when a person's correction replaces the platform's claim


@dataclass
class Appearance:
    post: PostRecord
    media: MediaRecord
    match: VideoMatch | None  # None: byte-identical to the query
    flags: list[str] = field(default_factory=list)
    ambiguous_with: list[int] = field(default_factory=list)  # post ids
    watch: WatchRecord | None = None  # the watch that found the post, if one did
    observations: list[ObservationRecord] = field(default_factory=list)  # revisits, oldest first
    user_claims: list[ClaimRecord] = field(default_factory=list)  # people's claims, oldest first
    edits: PictureEdits | None = None  # what matched frames cut in colour show (`monitor.jobs.edits`)

    @property
    def correction(self) -> ClaimRecord | None:
        """The newest user claim marked a correction: it replaces the platform's claim as the order key."""
        return next((c for c in reversed(self.user_claims) if c.correction), None)

    @property
    def claim(self) -> Claim | None:
        """The claim this appearance is ordered by (see the module docstring), or None."""
        if (c := self.correction) is not None:
            return Claim(c.published_at, c.precision, ORDERED_BY_CORRECTION, c)
        if self.post.published_at is None:
            return None
        return Claim(self.post.published_at, self.post.published_precision, self.post.published_source)

    @property
    def ordered_by(self) -> str:
        claim = self.claim
        return ORDERED_BY_FIRST_SEEN if claim is None else (
            ORDERED_BY_CORRECTION if claim.correction else ORDERED_BY_PLATFORM)

    def claim_interval(self) -> tuple[datetime, datetime] | None:
        """The claim as a half-open UTC interval: a whole day, or one instant."""
        claim = self.claim
        if claim is None:
            return None
        at = claim.at
        if claim.precision == PRECISION_DAY:
            start = at.replace(hour=0, minute=0, second=0, microsecond=0)
            return start, start + timedelta(days=1)
        return at, at + timedelta(microseconds=1)


@dataclass(frozen=True)
class Relation:
    """A stored match between the media of two appearances, seen from `media_id` (the other is `match.media_id`)."""

    media_id: int
    match: VideoMatch


@dataclass
class EarliestReport:
    query_file: Path  # the file the query's frames come from; for a URL, the download (see find_earliest_url)
    query_sha256: str
    query_duration: float
    query_url: str | None  # set for a URL query, exactly as given
    appearances: list[Appearance]
    relations: list[Relation] = field(default_factory=list)
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))

    @property
    def query_path(self) -> Path | None:
        """The query's local file as given; None for a URL query (its download is not the user's file)."""
        return None if self.query_url else self.query_file

    @property
    def query_name(self) -> str:
        """The query as people named it: the URL, or the file's name."""
        return self.query_url or self.query_file.name

    @property
    def earliest(self) -> Appearance | None:
        return self.appearances[0] if self.appearances else None


def order_appearances(appearances: list[Appearance]) -> list[Appearance]:
    """Sort and flag appearances by the rules in the module docstring."""
    claimed = [a for a in appearances if a.claim is not None]
    unclaimed = [a for a in appearances if a.claim is None]
    claimed.sort(key=lambda a: (a.claim.at, a.claim.precision != PRECISION_DAY, a.post.first_seen_at, a.post.id))
    unclaimed.sort(key=lambda a: (a.post.first_seen_at, a.post.id))
    for i, a in enumerate(claimed):
        lo, hi = a.claim_interval()
        for b in claimed[i + 1:]:
            b_lo, b_hi = b.claim_interval()
            if b_lo >= lo + timedelta(days=1):
                break  # sorted by start, and no claim is longer than a day
            day_claim = PRECISION_DAY in (a.claim.precision, b.claim.precision)
            if day_claim and lo < b_hi and b_lo < hi:
                for x, y in ((a, b), (b, a)):
                    if FLAG_AMBIGUOUS not in x.flags:
                        x.flags.append(FLAG_AMBIGUOUS)
                    x.ambiguous_with.append(y.post.id)
    for a in unclaimed:
        a.flags.append(FLAG_NO_CLAIM)
    for a in claimed:
        lo, _ = a.claim_interval()
        if a.post.first_seen_at and lo > a.post.first_seen_at:
            a.flags.append(FLAG_CLAIM_AFTER_SEEN)
    for a in appearances:
        if a.match is None:
            a.flags.append(FLAG_EXACT)
        if a.correction is not None:
            a.flags.append(FLAG_USER_CORRECTION)
    return claimed + unclaimed


def appearances_for(ws: Workspace, views: list[MatchView]) -> list[Appearance]:
    """The posts of the matched media, with their revisits and user claims; a post merged into another
    that is listed too is left out (the survivor stands for both)."""
    by_media = {v.media.id: v for v in views if v.media is not None}
    posts = ws.repository.posts_for_media(by_media)
    ids = {p.id for p in posts}
    merged = {m.post_id for m in ws.repository.merges_of_posts(ids) if m.post_id in ids and m.into_post_id in ids}
    posts = [p for p in posts if p.id not in merged]
    seen = ws.repository.observations_for_posts(p.id for p in posts)
    claims = ws.repository.claims_for_posts(p.id for p in posts)
    return order_appearances([Appearance(post=p, media=by_media[p.media_id].media, match=by_media[p.media_id].match,
                                         observations=seen.get(p.id, []), user_claims=claims.get(p.id, []))
                              for p in posts])


def load_report_context(ws: Workspace, appearances: list[Appearance]) -> list[Relation]:
    """Each appearance's watch, and the stored matches among the appearances' media: two queries
    (revisit observations come with the appearances, one query for all their posts)."""
    watches = ws.repository.watches_by_id(a.post.watch_id for a in appearances)
    for a in appearances:
        a.watch = watches.get(a.post.watch_id) if a.post.watch_id is not None else None
    return [Relation(media_id, match)
            for media_id, match in stored_matches_among(ws, {a.media.id for a in appearances})]


def _report(ws: Workspace, path: Path, sha256: str, duration: float, query_url: str | None,
            views: list[MatchView]) -> EarliestReport:
    appearances = appearances_for(ws, views)
    explain_appearances(ws, Path(path), appearances)
    return EarliestReport(query_file=Path(path), query_sha256=sha256, query_duration=duration, query_url=query_url,
                          appearances=appearances, relations=load_report_context(ws, appearances))


def find_earliest(ws: Workspace, path: Path, query_url: str | None = None,
                  analysed: AnalysedFile | None = None,
                  progress: Callable[[float, float | None], None] | None = None,
                  head_start: Callable[[], AnalysedFile | None] | None = None) -> EarliestReport:
    """Every stored appearance of the footage in `path`; the query itself is not stored.

    A file whose exact bytes are already stored is answered from the matches
    computed at ingest time; anything else is fingerprinted and looked up.
    `head_start` gives an analysis of `path` made elsewhere (see
    `monitor.cli.prefetch`), or None when the file must be analysed here after all;
    it is asked only when the stored-bytes shortcut does not apply.
    """
    same = None if analysed else stored_fingerprinted_media(ws, path)
    if same is not None:
        views = [MatchView(same, None), *stored_match_views(ws, same.id)]
        return _report(ws, path, same.sha256, same.duration or 0.0, query_url, views)
    analysed = (analysed or (head_start and head_start())
                or analyse_file(path, ws.settings, progress, ws.exif, describe=False, limits=ws.config.limits))
    same = ws.repository.get_media_by_sha256(analysed.sha256)
    exclude = {same.id} if same else set()
    views = [MatchView(media, m) for m in find_matches(ws, analysed.fingerprint, exclude)
             if (media := ws.repository.get_media(m.media_id)) is not None]  # deleted meanwhile: gone
    if same:
        views.insert(0, MatchView(same, None))
    return _report(ws, path, analysed.sha256, round(analysed.fingerprint.duration, 3), query_url, views)


def find_earliest_url(ws: Workspace, url: str, workdir: Path, also_ingest: bool = False,
                      progress: Callable[[float, float | None], None] | None = None) -> EarliestReport:
    """Download the video at `url` into `workdir` and find its appearances; with `also_ingest`, store its post.

    The report's `query_file` is the download in `workdir`: render a report
    that shows the query's frames (HTML) before `workdir` is removed.
    Raises `InputError` when the URL gives no usable video.
    """
    from monitor.sources import ListedItem, SourceError, YtDlpSource

    source = YtDlpSource(ws.config.ytdlp, limits=ws.config.limits)
    try:
        item = source.download(ListedItem(url=url, archive_key=None), workdir)
    except SourceError as exc:
        raise InputError(str(exc), kind=exc.kind) from exc
    analysed = analyse_file(item.path, ws.settings, progress, ws.exif, describe=also_ingest, limits=ws.config.limits)
    if also_ingest:
        existing = item.post.archive_key and ws.repository.get_post_by_archive_key(item.post.archive_key)
        if not existing:
            ingest_analysed(ws, analysed, item.post.to_new_post(0))
    return find_earliest(ws, item.path, query_url=url, analysed=analysed)
