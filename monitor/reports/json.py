"""The JSON report: the contract scripts rely on (docs/reports.md).

Keys are only ever added, never renamed or removed.  `query.path` is the
local file of a file query and null for a URL query, whose `query.url` is the
URL exactly as given.  The same query on the same store gives the same bytes
(no generation time here, unlike the documents: Markdown and HTML).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from fingerprints.align import VideoMatch
from monitor.jobs.earliest import Appearance, EarliestReport
from monitor.reports.lineage import QUERY, Lineage, lineage, unmatched_ranges
from monitor.reports.observations import observations_json
from monitor.reports.words import appearance_edits, confidence, detected_edits, iso


def match_json(match: VideoMatch | None, query_duration: float, stored_duration: float | None) -> dict[str, Any]:
    if match is None:
        end = round(query_duration, 3)
        return {"exact": True, "query_coverage": 1.0, "stored_coverage": 1.0, "mirrored": False, "speed": 1.0,
                "offset": 0.0, "segments": [{"query_start": 0.0, "query_end": end, "stored_start": 0.0,
                                             "stored_end": round(stored_duration or query_duration, 3)}],
                "matched_frames": None, "mean_distance": 0.0, "edits": [], "frames": [], "routes": [],
                "transform": {}}
    return {
        "exact": False,
        "query_coverage": match.query_coverage,
        "stored_coverage": match.stored_coverage,
        "mirrored": match.mirrored,
        "speed": match.speed,
        "offset": match.offset,
        "segments": [{"query_start": s.query_start, "query_end": s.query_end,
                      "stored_start": s.stored_start, "stored_end": s.stored_end} for s in match.segments],
        "matched_frames": match.matched_frames,
        "mean_distance": match.mean_distance,
        "specific_frames": match.specific_frames,
        "motion_frames": match.motion_frames,
        "flat_frames": match.flat_frames,
        "framing": match.framing,
        "regions": match.regions,
        "edits": detected_edits(match),
        "routes": match.routes,  # the signal kinds that found it: "frames", and per-video kinds ("keypoints")
        "transform": match.transform,  # geometry a local-feature route found, query -> stored
        "frames": [{"query_time": p.query_time, "stored_time": p.stored_time, "distance": p.distance}
                   for p in match.pairs],
    }


def appearance_json(a: Appearance, query_duration: float) -> dict[str, Any]:
    p = a.post
    return {
        "post_id": p.id,
        "media_id": a.media.id,
        "url": p.url,
        "platform": p.platform,
        "platform_post_id": p.platform_post_id,
        "uploader": p.uploader,
        "uploader_id": p.uploader_id,
        "title": p.title,
        "published_at": iso(p.published_at),
        "published_precision": p.published_precision,
        "published_source": p.published_source,
        "first_seen_at": iso(p.first_seen_at),
        "sha256": a.media.sha256,
        "duration": a.media.duration,
        "container_created_at": iso(a.media.container_created_at),
        "flags": list(a.flags),
        "ambiguous_with": list(a.ambiguous_with),
        "match": {**match_json(a.match, query_duration, a.media.duration), "edits": appearance_edits(a),
                  "confidence": dict(zip(("level", "reason"), confidence(a))),
                  "picture": None if a.edits is None else asdict(a.edits)},
        "watch": None if a.watch is None else {"id": a.watch.id, "label": a.watch.label, "url": a.watch.url,
                                                "kind": a.watch.kind},
        "observations": observations_json(a.observations),
        "ordered_by": a.ordered_by,
        "user_claims": [{"id": c.id, "published_at": iso(c.published_at), "published_precision": c.precision,
                         "source": c.source, "correction": c.correction, "author": c.author, "reason": c.reason,
                         "created_at": iso(c.created_at)} for c in a.user_claims],
    }


def derivation_json(report: EarliestReport, lines: Lineage) -> dict[str, Any]:
    def post_id(number: int) -> int | None:
        return None if number == QUERY else report.appearances[number - 1].post.id

    return {"links": [{"child_post_id": post_id(k.child), "parent_post_id": post_id(k.parent), "kind": k.kind,
                       "words": list(k.words), "order_certain": k.order_certain} for k in lines.links],
            "summary": list(lines.sentences)}


def report_json(report: EarliestReport) -> dict[str, Any]:
    appearances = [appearance_json(a, report.query_duration) for a in report.appearances]
    return {
        "query": {"path": str(report.query_path) if report.query_path else None, "url": report.query_url,
                  "sha256": report.query_sha256, "duration": report.query_duration},
        "earliest": appearances[0] if appearances else None,
        "appearances": appearances,
        "unmatched": [{"query_start": a, "query_end": b} for a, b in unmatched_ranges(report)],
        "derivation": derivation_json(report, lineage(report)),
    }


def render_json(report: EarliestReport) -> str:
    return json.dumps(report_json(report), indent=2, ensure_ascii=False)
