"""Per-family scores from each method's answers.

- recall: (query, true original) pairs found / all such pairs.  A compilation
  has one pair per source it cuts from.
- precision: reported (query, stored item) pairs that share footage (see
  `Corpus.related`; siblings count as right) / all reported pairs.
- earliest-correct: the reported item with the earliest claimed time is the
  earliest-claimed true original.  Distractors claim to be earliest of all, so
  one false match is enough to get this wrong.  Queries with no original
  (distractors) are not counted.
- segment accuracy (our matcher only; the peers report no segments): for every
  part of 4 s or more cut from an original at a known offset (excerpts,
  compilations, trims), some segment of the match with that original starts and
  ends within 1 s of the true source interval.
- false matches: reported pairs that share no footage, counted per family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from .corpus import Corpus, Item

SEGMENT_TOLERANCE = 1.0
SEGMENT_MIN_PART = 4.0
EXACT_FAMILIES = {"excerpt", "compilation", "real-edits", "combo", "static-camera"}


@dataclass
class PairScore:
    """The counts both suites keep: found and reported pairs, and earliest-correct."""

    queries: int = 0
    truth_pairs: int = 0
    found_pairs: int = 0
    reported: int = 0
    correct_reported: int = 0
    earliest_total: int = 0
    earliest_correct: int = 0

    @property
    def recall(self) -> float | None:
        return self.found_pairs / self.truth_pairs if self.truth_pairs else None

    @property
    def precision(self) -> float | None:
        return self.correct_reported / self.reported if self.reported else None

    @property
    def false_matches(self) -> int:
        return self.reported - self.correct_reported

    @property
    def earliest(self) -> float | None:
        return self.earliest_correct / self.earliest_total if self.earliest_total else None


@dataclass
class Score(PairScore):
    segment_total: int = 0
    segment_correct: int = 0

    @property
    def segments(self) -> float | None:
        return self.segment_correct / self.segment_total if self.segment_total else None

    def as_dict(self) -> dict:
        return {**asdict(self), "recall": self.recall, "precision": self.precision,
                "false_matches": self.false_matches, "earliest_correct_rate": self.earliest,
                "segment_accuracy": self.segments}


def score_method(corpus: Corpus, answers: Mapping[str, set[str]],
                 segments: Mapping[str, dict[str, list[tuple[float, float]]]] | None = None) -> dict[str, Score]:
    """`answers[query] = names of matched items`; `segments[query][item] = [(stored_start, stored_end)]`."""
    by_name = {i.name: i for i in corpus.items}
    scores: dict[str, Score] = {}
    for q in (i for i in corpus.items if i.is_query and i.name in answers):
        reported = [by_name[n] for n in answers[q.name]]
        truth = corpus.true_originals(q)
        for key in (q.family, "all"):
            s = scores.setdefault(key, Score())
            s.queries += 1
            s.truth_pairs += len(truth)
            s.found_pairs += sum(1 for o in truth if o.name in answers[q.name])
            s.reported += len(reported)
            s.correct_reported += sum(1 for r in reported if corpus.related(q, r))
            if truth:
                s.earliest_total += 1
                s.earliest_correct += _earliest_right(reported, truth)
            if segments is not None:
                total, right = _segments(q, truth, segments.get(q.name, {}))
                s.segment_total += total
                s.segment_correct += right
    return scores


def _earliest_right(reported: list[Item], truth: list[Item]) -> bool:
    if not reported:
        return False
    first = min(reported, key=lambda i: (i.claimed, i.name))
    return first is min(truth, key=lambda i: (i.claimed, i.name))


def _segments(q: Item, truth: list[Item], found: dict[str, list[tuple[float, float]]]) -> tuple[int, int]:
    total = right = 0
    for o in truth:
        base = o.parts[0]
        for p in q.parts:
            if p.source != base.source or p.end - p.start < SEGMENT_MIN_PART or p.end > 1e8:
                continue
            if q.family not in EXACT_FAMILIES:
                continue  # whole-video edits: the interval is the whole original, not a test of boundaries
            total += 1
            start, end = p.start - base.start, p.end - base.start
            if any(abs(a - start) <= SEGMENT_TOLERANCE and abs(b - end) <= SEGMENT_TOLERANCE
                   for a, b in found.get(o.name, [])):
                right += 1
    return total, right
