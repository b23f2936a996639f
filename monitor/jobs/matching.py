"""Matching a fingerprint against the store, and stored matches read back from either side.

`find_matches` runs the index lookup and temporal alignment, then explains
each match (which regions of the frames matched, how each side is framed);
each per-video signal kind the fingerprint has a value of (local features...)
is a second route, and the routes' matches are merged into one per stored
video (`fingerprints.fusion`);
`to_new_match` and `stored_match_views` turn matches into provenance records
and back, seen from whichever video asks.
"""

from __future__ import annotations

from fingerprints.align import FramePair, Segment, VideoMatch, extend_over_flat, match_fingerprint
from fingerprints.explain import (QUERY_CROPPED, STORED_CROPPED, STORED_SURROUND, STORED_WINDOW, SURROUND, WINDOW, framing,
                                  pair_regions)
from fingerprints.fusion import fuse_matches, invert_transform
from fingerprints.model import VideoFingerprint
from fingerprints.signals import MediaSignal, media_signals
from monitor.workspace import MatchView, Workspace
from storage.records import MatchRecord, MatchSegmentRecord, NewMatch


def find_matches(ws: Workspace, fingerprint: VideoFingerprint, exclude: set[int]) -> list[VideoMatch]:
    """Matches of a fingerprint against the store by every route, each saying which regions of the frames matched."""
    with ws.index_lock:  # the indexes are not thread-safe: no catching up while we query
        matches = match_fingerprint(fingerprint, ws.indexes(), ws.durations(), ws.match_params, exclude=exclude,
                                    copies=lambda ids: ws.repository.linked_media(ids, ws.settings_id,
                                                                                  ws.match_params.known_copies))
        by_signal = [_signal_matches(ws, kind, fingerprint, exclude) for kind in media_signals()
                     if fingerprint.signals.get(kind.name) is not None]
    for k, m in enumerate(matches):
        details = ws.repository.fingerprint_details(m.media_id, ws.settings_id) or {}
        m = matches[k] = extend_over_flat(m, fingerprint.flat_frames, details.get("flat_frames", []),
                                          fingerprint.duration, ws.durations()[m.media_id],
                                          fingerprint.settings.floor_interval, ws.match_params)
        m.regions = pair_regions(fingerprint.frames, ws.stored_frames(m.media_id),
                                 m.pairs, m.mirrored)
        m.framing = framing([(t, b.width / b.frame_width, b.height / b.frame_height) for t, b in fingerprint.crops],
                            [(c["from"], c["width"] / c["frame_width"], c["height"] / c["frame_height"])
                             for c in details.get("crops", []) if c.get("frame_width") and c.get("frame_height")],
                            m.pairs)
    return fuse_matches(matches, *by_signal)


def _signal_matches(ws: Workspace, kind: MediaSignal, fingerprint: VideoFingerprint,
                    exclude: set[int]) -> list[VideoMatch]:
    """The matches one per-video signal kind finds in its index (values of its own version only)."""
    def load(media_id: int):
        blob = ws.repository.media_signal(media_id, ws.settings_id, kind.name, kind.version)
        return None if blob is None else kind.from_bytes(blob)

    matches = kind.match(fingerprint.signals[kind.name], ws.signal_indexes()[kind.name].index, load,
                         ws.durations(), fingerprint.duration, exclude=set(exclude))
    for m in matches:
        m.routes = [kind.name]
    return matches


def stored_match_views(ws: Workspace, media_id: int) -> list[MatchView]:
    """The matches computed when `media_id` or its matches were ingested, seen from `media_id`."""
    return [MatchView(ws.repository.get_media(r.stored_media_id), _from_record(r))
            for r in ws.repository.matches_for_media(media_id, ws.settings_id)]


def stored_matches_among(ws: Workspace, media_ids: set[int]) -> list[tuple[int, VideoMatch]]:
    """Every stored match between two of `media_ids`, from both sides: (one side's id, the match seen from it)."""
    return [(r.query_media_id, _from_record(r)) for r in ws.repository.matches_among(media_ids, ws.settings_id)]


def to_new_match(query_media_id: int, settings_id: int, m: VideoMatch) -> NewMatch:
    return NewMatch(
        query_media_id=query_media_id, stored_media_id=m.media_id, settings_id=settings_id,
        query_coverage=m.query_coverage, stored_coverage=m.stored_coverage, mirrored=m.mirrored,
        speed=m.speed, score=m.score,
        segments=[MatchSegmentRecord(s.query_start, s.query_end, s.stored_start, s.stored_end) for s in m.segments],
        # pairs are written from the side of `query_media_id`; `_from_record` turns them round
        evidence={"query_media_id": query_media_id, "matched_frames": m.matched_frames,
                  "mean_distance": m.mean_distance, "specific_frames": m.specific_frames,
                  "motion_frames": m.motion_frames, "flat_frames": m.flat_frames, "regions": m.regions,
                  "framing": m.framing, "routes": m.routes, "transform": m.transform,
                  "pairs": [[p.query_time, p.stored_time, p.distance] for p in m.pairs]},
    )


# `fingerprints.explain` regions as seen from the other video of a match
_ONE_WAY = {QUERY_CROPPED: STORED_CROPPED, WINDOW: STORED_WINDOW, SURROUND: STORED_SURROUND}
_TURNED_ROUND = {**_ONE_WAY, **{seen: turned for turned, seen in _ONE_WAY.items()}}


def _from_record(r: MatchRecord) -> VideoMatch:
    """A stored match as a `VideoMatch` seen from `r.query_media_id`."""
    ev = r.evidence or {}
    pairs = [FramePair(*p) for p in ev.get("pairs", [])]
    regions = dict(ev.get("regions", {}))
    framed = dict(ev.get("framing", {}))
    transform = dict(ev.get("transform", {}))
    if ev.get("query_media_id") not in (None, r.query_media_id):
        transform = invert_transform(transform)
        pairs = [FramePair(p.stored_time, p.query_time, p.distance) for p in pairs]
        regions = {_TURNED_ROUND.get(k, k): n for k, n in regions.items()}
        framed = {("stored" + k[5:] if k.startswith("query") else "query" + k[6:]): v for k, v in framed.items()}
    segments = [Segment(s.query_start, s.query_end, s.stored_start, s.stored_end) for s in r.segments]
    first = segments[0] if segments else Segment(0.0, 0.0, 0.0, 0.0)
    return VideoMatch(
        media_id=r.stored_media_id, query_coverage=r.query_coverage, stored_coverage=r.stored_coverage,
        segments=segments, mirrored=r.mirrored, speed=round(r.speed, 4),
        offset=round(first.stored_start - r.speed * first.query_start, 3), score=r.score,
        matched_frames=ev.get("matched_frames", len(pairs)), mean_distance=ev.get("mean_distance", 0.0),
        pairs=pairs, specific_frames=ev.get("specific_frames", 0), motion_frames=ev.get("motion_frames", 0),
        flat_frames=ev.get("flat_frames", 0), framing=framed,
        regions=regions, transform=transform, routes=list(ev.get("routes", ["frames"])),
    )


