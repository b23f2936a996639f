"""The re-upload suite v2's ground truth and scoring rules, and that a random edit chain renders as described."""

from __future__ import annotations

import json
import random
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from benchmarks.reupload.families import Item, Part, Suite, related, shared_seconds
from benchmarks.reupload.family_scoring import Answer, score, true_speed
from monitor.synth import random_edits as R
from monitor.synth import transforms as T

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


def _item(name: str, side: str, *parts: Part, claimed: datetime | None = None, distractor: bool = False) -> Item:
    return Item(name, side, "x", Path(name), list(parts), None, claimed=claimed, distractor=distractor)


def test_items_are_related_by_one_second_of_the_same_source_footage():
    whole = _item("whole", "stored", Part("cam", 0, 20))
    window_a = _item("a", "query", Part("cam", 2, 8))
    window_b = _item("b", "query", Part("cam", 8.5, 14))  # the same still camera, other moments
    edge = _item("edge", "query", Part("cam", 7.2, 12))  # 0.8 s shared with window a
    other = _item("other", "query", Part("elsewhere", 2, 8))
    assert related(window_a, whole) and related(window_b, whole)
    assert not related(window_a, window_b) and not related(window_a, edge) and not related(window_a, other)
    assert related(window_b, edge) and shared_seconds(window_b, edge) == pytest.approx(3.5)
    # a compilation: cuts of two sources, each its own part
    comp = _item("comp", "query", Part("cam", 3, 5, at=0), Part("elsewhere", 2, 4, at=2))
    assert related(comp, window_a) and related(comp, other) and shared_seconds(comp, window_a) == pytest.approx(2)


def test_sped_up_excerpts_map_source_time_to_item_time_and_speed():
    stored = _item("s", "stored", Part("cam", 10, 20, at=0, speed=0.8))  # slowed: 12.5 s long
    query = _item("q", "query", Part("cam", 12, 16, at=0, speed=1.6))  # sped up: 2.5 s long
    assert stored.duration == pytest.approx(12.5) and query.duration == pytest.approx(2.5)
    assert stored.parts[0].item_time(12) == pytest.approx(2.5)
    assert true_speed(query, stored) == pytest.approx(2.0)  # stored seconds per query second


def test_scores_recall_precision_earliest_placement_and_speed():
    leak = _item("leak", "stored", Part("cam", 4, 8), claimed=T0)  # an excerpt posted first
    full = _item("full", "stored", Part("cam", 0, 20), claimed=T0 + timedelta(days=1))
    decoy = _item("decoy", "stored", Part("noise", 0, 9), claimed=T0 - timedelta(days=1), distractor=True)
    query = _item("q", "query", Part("cam", 0, 20, speed=1.25))  # 16 s long
    suite = Suite(seed=0, items=[leak, full, decoy, query])
    assert [p.name for p in suite.true_posts(query)] == ["leak", "full"] and suite.earliest_true(query) is leak

    # the leak sits at query 3.2-6.4 s and stored 0-4 s; the full post is whole against whole (no placement)
    right = Answer(found=["leak", "full"], first="leak", segments={"leak": [(3.4, 6.2, 0.2, 3.9)], "full": []},
                   speeds={"leak": 1.27, "full": 1.1})
    s = score(suite, {"q": right}, lambda q: [])["all"]
    assert (s.recall, s.precision, s.earliest) == (1.0, 1.0, 1.0)
    assert (s.placement_correct, s.placement_total) == (1, 1)
    assert (s.speed_correct, s.speed_total) == (1, 2)  # 1.27 is within 5% of 1.25, 1.1 is not

    wrong = Answer(found=["full", "decoy"], first="decoy", segments={"full": []}, speeds={})
    s = score(suite, {"q": wrong}, lambda q: [])["all"]
    assert (s.recall, s.precision, s.earliest, s.false_to_distractors) == (0.5, 0.5, 0.0, 1)
    misplaced = Answer(found=["leak"], segments={"leak": [(5.5, 8.5, 0.0, 3.0)]})
    s = score(suite, {"q": misplaced}, lambda q: [])["all"]
    assert (s.placement_correct, s.placement_total, s.earliest) == (0, 1, 1.0)  # earliest-claimed of its matches


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("footage")
    for name, src in (("a.mp4", "testsrc2=s=192x144:r=25"), ("bg.mp4", "mandelbrot=s=160x90:r=25:maxiter=32")):
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", src, "-t", "5", "-pix_fmt", "yuv420p",
                        str(d / name)], check=True)
    return d / "a.mp4", d / "bg.mp4"


def _probe(path: Path) -> tuple[float, int, int]:
    out = json.loads(subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                     "stream=width,height:format=duration", "-of", "json", str(path)],
                                    capture_output=True, check=True, text=True).stdout)
    return float(out["format"]["duration"]), out["streams"][0]["width"], out["streams"][0]["height"]


@pytest.mark.parametrize("seed", [1, 2])
def test_a_random_edit_chain_renders_with_the_duration_its_ground_truth_says(footage, tmp_path, seed):
    src, bg = footage
    rng = random.Random(seed)
    edits = [R.speed(rng, extreme=True), *R.random_chain(rng, 2, ("rotate-zoom", "stretch", "crop-offcentre",
                                                                  "pad-colour", "caption", "filter")),
             R.picture_in_picture(rng, R.Background(bg, 0.5, "bg"))]
    chain = R.chain_recipe(src, 1.0, 3.0, edits)
    assert chain.speed == pytest.approx(edits[0].speed) and not 0.8 < chain.speed < 1.25
    duration, width, height = _probe(T.render(chain.recipe, tmp_path / "copy.mp4"))
    assert abs(duration - chain.duration) <= 0.15, [e.describe() for e in edits]
    assert width % 2 == 0 and height % 2 == 0 and max(width, height) <= 640
