"""How the footage spread (`monitor.reports.lineage`) and the HTML figures, on report models built by hand.

The stored matches here are written out so that each case says one thing:
a chain of edits, a copy that shows more than an earlier post, a query
with footage no one has, day claims, posts with no claim, revisits.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fingerprints.align import FramePair, Segment, VideoMatch
from monitor.jobs.earliest import Appearance, EarliestReport, Relation, order_appearances
from monitor.reports import render_report
from monitor.reports.figures import graph, timeline
from monitor.reports.lineage import DERIVED, IDENTICAL, QUERY, SHARES, lineage, unmatched_ranges
from storage.records import MediaRecord, ObservationRecord, PostRecord

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def media(media_id: int, duration: float = 20.0) -> MediaRecord:
    return MediaRecord(id=media_id, sha256=f"{media_id:064x}", size_bytes=1, store_path=f"media/{media_id}.mp4",
                       duration=duration, width=320, height=180, fps=25.0, video_codec="h264", audio_codec=None,
                       container_format="mp4", container_created_raw=None, container_created_at=None)


def post(post_id: int, media_id: int, claim: datetime | None = None, day: bool = False,
         seen: datetime | None = None) -> PostRecord:
    return PostRecord(id=post_id, media_id=media_id, url=f"https://example.org/{post_id}", published_at=claim,
                      published_precision=None if claim is None else ("day" if day else "second"),
                      published_source=None if claim is None else "user-supplied",
                      first_seen_at=seen or (claim or T0) + timedelta(hours=1))


def match(other: int, q: tuple[float, float], s: tuple[float, float], q_cov: float, s_cov: float,
          mirrored: bool = False, regions: dict[str, int] | None = None, distance: float = 4.0) -> VideoMatch:
    return VideoMatch(media_id=other, query_coverage=q_cov, stored_coverage=s_cov,
                      segments=[Segment(q[0], q[1], s[0], s[1])], mirrored=mirrored, speed=1.0,
                      offset=s[0] - q[0], score=1.0, matched_frames=10, mean_distance=distance,
                      pairs=[FramePair(q[0] + 1, s[0] + 1, 3)], regions=regions or {})


def report(appearances: list[Appearance], relations: list[Relation], duration: float = 20.0) -> EarliestReport:
    return EarliestReport(query_file=Path("/nonexistent/query.mp4"), query_sha256="f" * 64, query_duration=duration,
                          query_url=None, appearances=order_appearances(appearances), relations=relations)


def both_ways(a: int, b: int, m_ab: VideoMatch, m_ba: VideoMatch) -> list[Relation]:
    return [Relation(a, m_ab), Relation(b, m_ba)]


def test_a_chain_of_edits_is_read_back_link_by_link():
    # 1 original (20 s) -> 2 mirrored copy -> 3 a 10 s excerpt of the mirrored copy; 4 re-posts 3's file
    orig, mirror, excerpt = media(1), media(2), media(3, duration=10.0)
    apps = [Appearance(post(1, 1, T0), orig, match(1, (0, 20), (0, 20), 1.0, 1.0, mirrored=True)),
            Appearance(post(2, 2, T0 + timedelta(hours=2)), mirror, match(2, (0, 20), (0, 20), 1.0, 1.0)),
            Appearance(post(3, 3, T0 + timedelta(hours=5)), excerpt, match(3, (5, 15), (0, 10), 0.5, 1.0)),
            Appearance(post(4, 3, T0 + timedelta(days=3)), excerpt, match(3, (5, 15), (0, 10), 0.5, 1.0))]
    relations = (both_ways(2, 1, match(1, (0, 20), (0, 20), 1.0, 1.0, mirrored=True),
                           match(2, (0, 20), (0, 20), 1.0, 1.0, mirrored=True))
                 + both_ways(3, 1, match(1, (0, 10), (5, 15), 1.0, 0.5, mirrored=True),
                             match(3, (5, 15), (0, 10), 0.5, 1.0, mirrored=True))
                 + both_ways(3, 2, match(2, (0, 10), (5, 15), 1.0, 0.5), match(3, (5, 15), (0, 10), 0.5, 1.0)))
    lines = lineage(report(apps, relations))
    links = {k.child: k for k in lines.links}
    assert set(links) == {2, 3, 4, QUERY}
    assert (links[2].parent, links[2].kind, links[2].words) == (1, DERIVED, ("mirrored",))
    assert (links[3].parent, links[3].kind) == (2, DERIVED)  # the mirrored copy: fewer edits than the original
    assert links[3].words == ("excerpt of #2 (5.0–15.0 s of it)",)  # which part of #2 it shows
    assert (links[4].parent, links[4].kind) == (3, IDENTICAL)
    assert links[QUERY].parent == 2 and links[QUERY].kind == DERIVED  # the query is 2's footage, unmirrored
    assert lines.sentences[0] == "#1 is the earliest appearance: nothing stored comes before it."
    assert "#3 most likely derives from #2: excerpt of #2 (5.0–15.0 s of it); claimed 3.0 h later." in lines.sentences
    assert unmatched_ranges(report(apps, relations)) == []


def test_a_later_copy_that_shows_more_is_not_made_from_the_earlier_one():
    # 1 is a crop of 2 (2 shows more around the picture), yet 1 claims to be earlier; 3 has no stored link
    apps = [Appearance(post(1, 1, T0), media(1), match(1, (0, 20), (0, 20), 1.0, 1.0)),
            Appearance(post(2, 2, T0 + timedelta(hours=1)), media(2), match(2, (0, 20), (0, 20), 1.0, 1.0)),
            Appearance(post(3, 3, None, seen=T0 + timedelta(days=1)), media(3), match(3, (0, 20), (0, 20), 1.0, 1.0))]
    relations = both_ways(2, 1, match(1, (0, 20), (0, 20), 1.0, 1.0, regions={"crop of query": 9, "whole": 1}),
                          match(2, (0, 20), (0, 20), 1.0, 1.0, regions={"cropped": 9, "whole": 1}))
    lines = lineage(report(apps, relations))
    links = {k.child: k for k in lines.links}
    assert links[2].kind == SHARES and "#1 shows less of the picture" in links[2].words
    assert 3 not in links
    assert any(s.startswith("#3 is linked to no earlier appearance") for s in lines.sentences)


def test_footage_of_the_query_no_one_has_is_said_and_drawn():
    apps = [Appearance(post(1, 1, T0), media(1, 8.0), match(1, (2.0, 7.0), (0, 5), 0.4, 0.6)),
            Appearance(post(2, 2, T0), media(2, 8.0), match(2, (6.5, 9.0), (1, 3.5), 0.2, 0.3))]
    r = report(apps, [], duration=12.0)
    assert unmatched_ranges(r) == [(0.0, 2.0), (9.0, 12.0)]
    link = next(k for k in lineage(r).links if k.child == QUERY)
    assert link.kind == SHARES and link.parent == 1  # 1 explains more of the query than 2
    assert "it shows footage #1 lacks (0:00.0–0:02.0, 0:07.0–0:12.0)" in link.words
    text = render_report("text", r, None)
    assert "Matched nowhere: query 0:00.0–0:02.0, query 0:09.0–0:12.0" in text
    data = render_report("json", r, None)
    assert '"unmatched": [\n    {\n      "query_start": 0.0,\n      "query_end": 2.0' in data


def test_timeline_draws_day_claims_as_days_unclaimed_posts_at_first_seen_and_revisits():
    day = datetime(2024, 3, 1, tzinfo=UTC)
    revisits = [ObservationRecord(1, day + timedelta(days=2), "up", "yt-dlp metadata", "test"),
                ObservationRecord(1, day + timedelta(days=4), "removed", "yt-dlp metadata", "test", http_status=404,
                                  error_kind="http-404")]
    apps = [Appearance(post(1, 1, day, day=True, seen=day + timedelta(hours=20)), media(1), None,
                       observations=revisits),
            Appearance(post(2, 2, day + timedelta(hours=9)), media(2), None),
            Appearance(post(3, 3, None, seen=day + timedelta(days=1, hours=6)), media(3), None)]
    r = report(apps, [])
    fig = timeline(r)
    kinds = {(m.kind, m.title.split(":")[0]) for m in fig.marks}
    assert {("day", "#1"), ("claim", "#2"), ("unclaimed", "#3"), ("first-seen", "#1"), ("first-seen", "#2"),
            ("observation", "#1")} <= kinds
    bar = next(m for m in fig.marks if m.kind == "day")
    dot = next(m for m in fig.marks if m.kind == "claim")
    assert bar.x < dot.x < bar.x + bar.width  # 09:00 lies inside the day
    per_hour = bar.width / 24
    unclaimed = next(m for m in fig.marks if m.kind == "unclaimed")
    assert unclaimed.x == pytest.approx(bar.x + 30 * per_hour, abs=0.2)  # placed at its first sighting
    assert fig.sighting[0] == pytest.approx(dot.x + 1 * per_hour, abs=0.2)  # our first sighting: post 2, 10:00
    assert [m.state for m in fig.marks if m.kind == "observation"] == ["up", "removed"]
    page = render_report("html", r, _NoStore())
    assert page.count('class="observation removed"') == 1  # the timeline square
    assert "removed between 2024-03-03 00:00:00 UTC and 2024-03-05 00:00:00 UTC (http-404)" in page  # the table


class _NoStore:
    """Stored files are not needed to test the page's layout: every frame comes out missing."""

    def path(self, relative: str) -> Path:
        return Path("/nonexistent") / relative


@pytest.mark.parametrize("seed", range(20))
def test_random_reports_give_one_earlier_source_per_copy(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 9)
    media_ids = [rng.randint(1, max(1, n - 1)) for _ in range(n)]
    apps = []
    for i, m in enumerate(media_ids, 1):
        claim = None if rng.random() < 0.2 else T0 + timedelta(hours=rng.uniform(0, 96))
        seen = T0 + timedelta(hours=rng.uniform(0, 120))
        apps.append(Appearance(post(i, m, claim, day=rng.random() < 0.3, seen=seen), media(m, rng.uniform(3, 60)),
                               _random_match(rng, m)))
    relations = []
    for a in sorted(set(media_ids)):
        for b in sorted(set(media_ids)):
            if a < b and rng.random() < 0.6:
                relations += both_ways(a, b, _random_match(rng, b), _random_match(rng, a))
    r = report(apps, relations, duration=rng.uniform(3, 60))
    lines = lineage(r)
    children = [k.child for k in lines.links]
    assert len(children) == len(set(children)) and QUERY in children
    for k in lines.links:
        assert k.child == QUERY or k.parent < k.child
        same = k.child != QUERY and r.appearances[k.child - 1].media.id == r.appearances[k.parent - 1].media.id
        assert (k.kind == IDENTICAL) == same
    assert len(lines.sentences) == len(r.appearances) + 1
    fig = graph(r, lines)
    assert len(fig.arcs) == len(lines.links) and len(fig.nodes) == len(r.appearances) + 1


def _random_match(rng: random.Random, other: int) -> VideoMatch:
    start = rng.uniform(0, 10)
    length = rng.uniform(1, 30)
    return match(other, (start, start + length), (0, length), rng.uniform(0.1, 1.0), rng.uniform(0.1, 1.0),
                 mirrored=rng.random() < 0.3, regions=rng.choice([{}, {"whole": 5}, {"crop of query": 5}]),
                 distance=rng.uniform(0, 14))
