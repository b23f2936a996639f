"""Scores of the re-upload suite v2, per query family, from each method's answers.

- recall: (query, true stored post) pairs found / all such pairs, where a
  stored post is true when it shares at least 1 s of source footage with the
  query (`families.related`).
- precision: reported pairs that share footage / all reported pairs.
- earliest-correct: the appearance a method names first is the earliest-
  claimed true stored post (ours: find-earliest's first appearance; a peer:
  the earliest-claimed of its matches).  Queries with no true post are not
  counted.
- placement (ours only): for each found true post that shares a stretch of
  at least 3 s with the query where one side is an excerpt of the other (the
  shared stretch is at least 1 s shorter than the query or the stored post),
  some reported segment, or the span of all of them, starts and ends within
  1 s of the true interval on both sides.
- speed (ours only): found true pairs whose true relative speed is at least
  4% away from 1; right when the reported speed is within 5% of it.
- false: reported pairs sharing no footage; `to distractors` counts those
  whose stored post is distractor footage.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .families import Item, Suite, overlaps
from .scoring import PairScore

PLACEMENT_MIN = 3.0
PLACEMENT_TOLERANCE = 1.0
SPEED_TOLERANCE = 0.05


@dataclass
class Answer:
    """What a method said about one query."""

    found: list[str]  # stored post names
    first: str | None = None  # the post named earliest (None: the earliest-claimed match)
    segments: dict[str, list[tuple[float, float, float, float]]] = field(default_factory=dict)
    speeds: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Score(PairScore):
    placement_total: int = 0
    placement_correct: int = 0
    speed_total: int = 0
    speed_correct: int = 0
    false_to_distractors: int = 0
    speed_pairs: list[tuple[float, float | None]] = field(default_factory=list)  # (true, reported)

    @property
    def placement(self) -> float | None:
        return self.placement_correct / self.placement_total if self.placement_total else None

    @property
    def speed(self) -> float | None:
        return self.speed_correct / self.speed_total if self.speed_total else None

    def as_dict(self) -> dict:
        return {**asdict(self), "recall": self.recall, "precision": self.precision, "false": self.false_matches,
                "earliest_rate": self.earliest, "placement_rate": self.placement, "speed_rate": self.speed}


def _placement(q: Item, s: Item, segs: list[tuple[float, float, float, float]]) -> tuple[int, int]:
    total = right = 0
    if not segs:
        spans = []
    else:
        spans = list(segs) + [(min(x[0] for x in segs), max(x[1] for x in segs),
                               min(x[2] for x in segs), max(x[3] for x in segs))]
    for pq, ps, lo, hi in overlaps(q, s):
        if hi - lo < PLACEMENT_MIN:
            continue
        q0, q1, s0, s1 = pq.item_time(lo), pq.item_time(hi), ps.item_time(lo), ps.item_time(hi)
        if q1 - q0 > q.duration - 1 and s1 - s0 > s.duration - 1:
            continue  # whole against whole: no placement to test
        total += 1
        t = PLACEMENT_TOLERANCE
        right += any(abs(a - q0) <= t and abs(b - q1) <= t and abs(c - s0) <= t and abs(d - s1) <= t
                     for a, b, c, d in spans)
    return total, right


def true_speed(q: Item, s: Item) -> float | None:
    """Stored seconds per query second over their longest shared stretch."""
    best = max(overlaps(q, s), key=lambda o: o[3] - o[2], default=None)
    return None if best is None else best[0].speed / best[1].speed


def score(suite: Suite, answers: dict[str, Answer], group) -> dict[str, Score]:
    """Scores per group (`group(query) -> list of group names`) and "all"."""
    by_name = {i.name: i for i in suite.items}
    out: dict[str, Score] = {}
    for q in suite.queries:
        if q.name not in answers:
            continue
        ans = answers[q.name]
        truth = suite.true_posts(q)
        reported = [by_name[n] for n in ans.found]
        first = by_name.get(ans.first) if ans.first else (
            min(reported, key=lambda i: (i.claimed, i.name)) if reported else None)
        earliest = suite.earliest_true(q)
        for key in [*group(q), "all"]:
            sc = out.setdefault(key, Score())
            sc.queries += 1
            sc.truth_pairs += len(truth)
            sc.found_pairs += sum(t.name in ans.found for t in truth)
            sc.reported += len(reported)
            right = [r for r in reported if r in truth]
            sc.correct_reported += len(right)
            sc.false_to_distractors += sum(r.distractor for r in reported if r not in truth)
            if earliest is not None:
                sc.earliest_total += 1
                sc.earliest_correct += first is earliest
            for r in right:
                if r.name in ans.segments:
                    total, ok = _placement(q, r, ans.segments[r.name])
                    sc.placement_total += total
                    sc.placement_correct += ok
                k = true_speed(q, r)
                if r.name in ans.speeds and k is not None and abs(k - 1) >= 0.04:
                    got = ans.speeds[r.name]
                    sc.speed_total += 1
                    sc.speed_correct += got is not None and abs(got / k - 1) <= SPEED_TOLERANCE
                    sc.speed_pairs.append((round(k, 3), None if got is None else round(got, 3)))
    return out


def pair_recall(suite: Suite, answers: dict[str, Answer]) -> dict[str, tuple[int, int]]:
    """Recall over (query, true stored post) pairs grouped by what the stored post is: (found, pairs)."""
    out: dict[str, list[int]] = {}
    for q in suite.queries:
        if q.name not in answers:
            continue
        for s in suite.true_posts(q):
            for key in (f"stored {s.role}", *([f"stored by account {s.account}"] if s.account else [])):
                cell = out.setdefault(key, [0, 0])
                cell[0] += s.name in answers[q.name].found
                cell[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(out.items())}
