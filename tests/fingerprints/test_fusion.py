"""Matches of several routes merged into one per stored video; a transform turned round for the other side."""

from __future__ import annotations

import math

import pytest

from fingerprints.align import Segment, VideoMatch
from fingerprints.fusion import fuse_matches, invert_transform


def match(media_id: int, coverage: float, routes: list[str], score: float = 1.0, **extra) -> VideoMatch:
    return VideoMatch(media_id=media_id, query_coverage=coverage, stored_coverage=coverage,
                      segments=[Segment(0.0, 10 * coverage, 0.0, 10 * coverage)], mirrored=False, speed=1.0,
                      offset=0.0, score=score, matched_frames=5, mean_distance=3.0, routes=routes, **extra)


def test_one_match_per_video_the_better_covering_one_with_every_route():
    geometry = {"rotation": -20.0, "scale_x": 0.75, "scale_y": 0.75, "inliers": 30.0}
    frames = [match(1, 0.9, ["frames"], score=3.0), match(2, 0.4, ["frames"], score=2.0)]
    keypoints = [match(1, 0.5, ["keypoints"], transform=geometry),
                 match(2, 0.8, ["keypoints"], score=0.5, transform=geometry),
                 match(3, 0.6, ["keypoints"], score=0.7, transform=geometry)]
    fused = fuse_matches(frames, keypoints)
    assert [m.media_id for m in fused] == [1, 3, 2]  # by score, each video once
    one, three, two = fused
    assert one is frames[0] and one.routes == ["frames", "keypoints"] and one.transform == geometry
    assert two is keypoints[1] and two.routes == ["frames", "keypoints"]  # keypoints cover more of it
    assert three.routes == ["keypoints"]
    assert fuse_matches(frames) == sorted(frames, key=lambda m: -m.score)


def test_a_transform_turned_round_twice_is_itself():
    t = {"inliers": 22.0, "rotation": -20.12, "scale_x": 0.745, "scale_y": 0.749, "stored_x": 0.126,
         "stored_y": 0.11, "stored_w": 0.874, "stored_h": 0.89, "query_x": 0.0, "query_y": 0.0, "query_w": 1.0,
         "query_h": 1.0}
    back = invert_transform(t)
    assert back["rotation"] == 20.12 and back["scale_x"] == pytest.approx(1 / 0.745, abs=1e-3)
    assert (back["query_x"], back["query_w"], back["stored_w"]) == (0.126, 0.874, 1.0)
    assert back["inliers"] == 22.0
    again = invert_transform(back)
    assert again.keys() == t.keys()
    assert all(math.isclose(again[k], t[k], abs_tol=2e-3) for k in t)
    assert invert_transform({}) == {}
