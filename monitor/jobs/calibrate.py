"""`provenance calibrate`: how well the matcher finds *this* store's footage after re-upload edits.

The benchmark suite measures the matcher on a fixed corpus, but a newsroom's
footage (night shots, static cameras, screen recordings) may behave
differently.  Calibration renders the suite's edits (`monitor.synth.transforms`) of
a sample of stored videos, matches every copy against the store exactly as
find-earliest does, and reports per edit family the recall at the configured
thresholds; a sweep over the frame-hash distance then shows the widest
`max_distance` that still keeps the precision the user asks for.

Nothing is stored: copies live in a temporary directory (or one the user
keeps), the database is only read.

Ground truth comes from the store itself.  A copy should find its source; a
match to any other stored video is false unless the store already links the
two, directly or through other copies (the source's footage group: the
connected stored matches, `monitor.jobs.browse.footage_of`).  Copies of one
footage stored under several posts are the same footage, not false matches.
Calibration cannot tell a wrong stored link from a right one, so it counts
new mistakes, not old ones.

Copies are matched by `monitor.jobs.matching.find_matches`, the path
find-earliest takes, at each max_distance of the sweep.  The advice never
trades recall away: a max_distance is only suggested when it finds at least
as many copies as the configured one, and the report says what it rests on.
"""

from __future__ import annotations

import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from fingerprints.align import MatchParams
from fingerprints.decode import VideoDecodeError
from fingerprints.index import IndexHits
from fingerprints.video import fingerprint_video
from monitor.jobs.browse import footage_of
from monitor.jobs.matching import find_matches
from monitor.synth import transforms as T
from monitor.workspace import Workspace
from monitor.synth.samples import SampleError, make_source_clip

FAMILIES: tuple[str, ...] = ("reencode", "flip", "crop", "borders", "vertical", "caption", "logo", "overlay",
                             "pip", "speed", "excerpt", "colour", "fps")
SWEEP: tuple[int, ...] = tuple(range(4, 23, 2))  # max_distance values tried
WINDOW_SECONDS = 20.0  # each copy is made from at most this much of the middle of its source
EXCERPT_SECONDS = 5.0
MAX_SIDE = 854  # copies are scaled down to 480p first, as most re-uploads are: rendering stays quick for HD sources
MIN_SOURCE_SECONDS = 3.0  # shorter stored videos are not sampled
PIP_BACKGROUND_SEED = 7  # the generated background when only one video is sampled

Progress = Callable[[int, int, str], None]  # (copies done, copies in all, what is being done)


class CalibrationError(Exception):
    """Calibration cannot run here; the message says how to fix that."""


@dataclass(frozen=True)
class Source:
    """A sampled stored video."""

    media_id: int
    sha256: str
    path: Path
    duration: float
    width: int | None
    height: int | None

    def window(self) -> tuple[float, float]:
        """(start, length) of the part that is edited: at most WINDOW_SECONDS from the middle."""
        length = min(self.duration, WINDOW_SECONDS)
        return round((self.duration - length) / 2, 3), round(length, 3)

    def clip(self, loop: bool = False) -> T.Input:
        start, length = self.window()
        return T.Input(self.path, start, length, loop=loop)


def _cap() -> T.Step:
    """Scale down (never up) so the long side is at most MAX_SIDE pixels."""
    factor = f"min(1,{MAX_SIDE}/max(iw,ih))"
    return T.vf(f"scale=w='trunc({factor}*iw/2)*2':h='trunc({factor}*ih/2)*2'")


def _borders(source: Source) -> T.Step:
    """Black bars: a landscape picture is letterboxed to a square, a portrait one pillarboxed, a square one to 4:5."""
    if source.width and source.height and source.height > source.width:
        return T.pillarbox(1.0)
    if source.width and source.height and source.height == source.width:
        return T.letterbox(1.25)
    return T.letterbox(1.0)


# family -> steps for the source; `pip` and `excerpt` are built in `recipe_for`
_STEPS: dict[str, Callable[[Source], list[T.Step]]] = {
    "reencode": lambda s: [T.reencode_360p()],
    "flip": lambda s: [T.vf("hflip")],
    "crop": lambda s: [T.crop(0.8)],
    "borders": lambda s: [_borders(s)],
    "vertical": lambda s: [T.vertical()],
    "caption": lambda s: [T.caption("Shared from a friend")],
    "logo": lambda s: [T.logo()],
    "overlay": lambda s: [T.centre_overlay(0.45)],
    "speed": lambda s: [T.speed(1.25)],
    "colour": lambda s: [T.vf("hue=s=0,eq=contrast=1.2:brightness=0.05")],
    "fps": lambda s: [T.fps(12)],
}


def recipe_for(family: str, source: Source, background: T.Input | None) -> T.Recipe | None:
    """The ffmpeg recipe for one copy; None when the family does not apply to this source."""
    if family == "excerpt":
        if source.duration < 2 * EXCERPT_SECONDS:
            return None
        middle = round(source.duration / 2 - EXCERPT_SECONDS / 2, 3)
        return T.Recipe([T.Input(source.path, middle, EXCERPT_SECONDS)], [_cap()])
    if family == "pip":
        if background is None:
            return None
        return T.Recipe([source.clip(), background], [T.pip(1, 0.6)])
    return T.Recipe([source.clip()], [_cap(), *_STEPS[family](source)], crf=35 if family == "reencode" else 23)


def parse_families(families: list[str] | str | None) -> list[str]:
    """Family names in suite order; raises ValueError naming the unknown ones."""
    if families is None:
        return list(FAMILIES)
    names = [f.strip().lower() for f in (families.split(",") if isinstance(families, str) else families)]
    names = [n for n in names if n]
    unknown = sorted(set(names) - set(FAMILIES))
    if unknown:
        raise ValueError(f"unknown transform famil{'y' if len(unknown) == 1 else 'ies'} {', '.join(unknown)}; "
                         f"choose from {', '.join(FAMILIES)}")
    if not names:
        raise ValueError(f"no family given; choose from {', '.join(FAMILIES)}")
    return [f for f in FAMILIES if f in names]


# -- results ------------------------------------------------------------------------------------------

@dataclass
class CopyOutcome:
    """One transformed copy and what it matched at each max_distance."""

    family: str
    source_id: int
    background_id: int | None = None  # the stored video behind a picture-in-picture copy
    path: str | None = None  # kept copies only
    error: str | None = None
    found: dict[int, bool] = field(default_factory=dict)  # max_distance -> the source was matched
    false: dict[int, list[int]] = field(default_factory=dict)  # max_distance -> unrelated stored media matched
    same_footage: list[int] = field(default_factory=list)  # other stored copies of the footage matched (configured)
    query_coverage: float | None = None  # of the source match, at the configured thresholds

    def as_dict(self, configured: int) -> dict[str, Any]:
        return {"family": self.family, "source_media_id": self.source_id, "background_media_id": self.background_id,
                "path": self.path, "error": self.error, "found": self.found.get(configured),
                "false_matches": self.false.get(configured), "same_footage_matches": self.same_footage,
                "query_coverage": self.query_coverage}


@dataclass(frozen=True)
class Score:
    """Copies, sources found and false matches at one max_distance."""

    max_distance: int
    copies: int
    found: int
    false_matches: int

    @property
    def recall(self) -> float | None:
        return self.found / self.copies if self.copies else None

    @property
    def precision(self) -> float | None:
        """Found sources among all non-related matches; None when nothing matched."""
        total = self.found + self.false_matches
        return self.found / total if total else None

    def as_dict(self) -> dict[str, Any]:
        return {"max_distance": self.max_distance, "copies": self.copies, "found": self.found,
                "false_matches": self.false_matches, "recall": _round(self.recall), "precision": _round(self.precision)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class FamilyReport:
    family: str  # "all" for every family together
    copies: int
    failed: int
    configured: Score
    sweep: list[Score]
    suggested: Score | None  # widest max_distance that keeps the target precision

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "copies": self.copies, "failed": self.failed,
                "configured": self.configured.as_dict(), "suggested": self.suggested and self.suggested.as_dict(),
                "sweep": [s.as_dict() for s in self.sweep]}


@dataclass
class CalibrationReport:
    settings: str  # fingerprint settings key
    match_params: MatchParams
    target_precision: float
    seed: int
    sources: list[Source]
    stored_videos: int  # fingerprinted stored videos a copy could match
    linked_videos: int  # stored videos in the sampled sources' footage groups (their matches are not false)
    families: list[FamilyReport]
    overall: FamilyReport
    copies: list[CopyOutcome]
    notes: list[str] = field(default_factory=list)

    @property
    def configured_max_distance(self) -> int:
        return self.match_params.max_distance

    def basis(self) -> str:
        """What the advice rests on, in words."""
        o = self.overall
        families = len(self.families)
        return (f"{o.copies} edited copies ({families} famil{'y' if families == 1 else 'ies'}) of {len(self.sources)} "
                f"stored videos, matched as find-earliest matches against {self.stored_videos} stored videos; "
                f"matches to {self.linked_videos} stored videos of the sampled footage (linked by stored matches) "
                f"are not counted as false")

    def advice(self) -> str:
        """The suggested max_distance in words; never one that finds fewer copies than the configured one."""
        configured, now, best = self.configured_max_distance, self.overall.configured, self.overall.suggested
        if best is None:
            return (f"keep max_distance {configured}: no value from {self.overall.sweep[0].max_distance} to "
                    f"{self.overall.sweep[-1].max_distance} reaches precision {self.target_precision:g} without "
                    "finding fewer copies; check the false matches by eye (--json lists them), or calibrate on a "
                    "larger --sample")
        if best.max_distance == configured:
            return f"keep max_distance {configured}: it reaches precision {self.target_precision:g}"
        if best.max_distance > configured and best.found <= now.found:
            return (f"keep max_distance {configured}: up to {best.max_distance} keeps the precision but finds no "
                    "more copies")
        why = "finds more copies" if best.found > now.found else "finds as many copies with fewer false matches"
        return (f"set [matching] max_distance = {best.max_distance} in your config file: it {why} (recall "
                f"{best.recall:.0%}, precision {best.precision:.3f}; configured: recall {now.recall:.0%})")

    def as_dict(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "configured_max_distance": self.configured_max_distance,
            "target_precision": self.target_precision,
            "seed": self.seed,
            "stored_videos": self.stored_videos,
            "linked_videos": self.linked_videos,
            "advice": self.advice(),
            "basis": self.basis(),
            "sources": [{"media_id": s.media_id, "sha256": s.sha256, "duration": s.duration} for s in self.sources],
            "families": [f.as_dict() for f in self.families],
            "overall": self.overall.as_dict(),
            "copies": [c.as_dict(self.configured_max_distance) for c in self.copies],
            "notes": self.notes,
        }


def suggest(sweep: list[Score], target_precision: float, configured: int) -> Score | None:
    """The widest max_distance whose precision reaches the target and that finds at least as many copies as
    the configured one (a sweep point where nothing matched does not count); None when there is none."""
    now = next(s for s in sweep if s.max_distance == configured)
    good = [s for s in sweep if s.precision is not None and s.precision >= target_precision and s.found >= now.found]
    return max(good, key=lambda s: s.max_distance) if good else None


def summarise(family: str, outcomes: list[CopyOutcome], thresholds: list[int], configured: int,
              target_precision: float) -> FamilyReport:
    done = [o for o in outcomes if o.error is None]
    sweep = [Score(d, len(done), sum(o.found[d] for o in done), sum(len(o.false[d]) for o in done))
             for d in thresholds]
    at_configured = next(s for s in sweep if s.max_distance == configured)
    return FamilyReport(family, len(done), len(outcomes) - len(done), at_configured, sweep,
                        suggest(sweep, target_precision, configured))


# -- the job ------------------------------------------------------------------------------------------

class _SweepIndex:
    """Asks the index once per query at the sweep's widest distance; narrower queries filter that answer.

    For an exact index this is the same as asking again (a hit within d is a
    hit within any wider distance), and the sweep costs one index query per
    copy and side (plain and mirrored) instead of one per threshold.
    """

    def __init__(self, index, widest: int) -> None:
        self.index = index
        self.widest = widest
        self._hits: dict[bytes, IndexHits] = {}

    def query(self, hashes: np.ndarray, max_distance: int, complete_to: int | None = None) -> IndexHits:
        if max_distance > self.widest:
            return self.index.query(hashes, max_distance, complete_to)
        key = np.asarray(hashes, dtype=np.uint64).tobytes()
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = self.index.query(hashes, self.widest)
        if max_distance == self.widest:
            return hits
        keep = hits.distances <= max_distance
        return IndexHits(hits.query_positions[keep], hits.media_ids[keep], hits.timestamps[keep], hits.distances[keep])

    def query_media(self, hashes: np.ndarray, max_distance: int, media_ids: set[int]) -> IndexHits:
        return self.index.query_media(hashes, max_distance, media_ids)

    def forget(self) -> None:
        self._hits.clear()


def pick_sources(ws: Workspace, sample: int, seed: int) -> list[Source]:
    """Up to `sample` stored videos, fingerprinted with the current settings and on disk, chosen by `seed`."""
    repo = ws.repository
    ids = sorted(repo.fingerprinted_media_ids(ws.settings_id))
    random.Random(seed).shuffle(ids)
    usable: list[Source] = []
    for media_id in ids:
        if len(usable) >= max(sample, 2):  # two at least: one alone has nothing to be confused with
            break
        media = repo.get_media(media_id)
        if media is None or (media.duration or 0.0) < MIN_SOURCE_SECONDS:
            continue
        try:
            path = ws.store.path(media.store_path)
        except ValueError:
            continue
        if not path.is_file() or len(repo.frames_for_media(media_id, ws.settings_id)) < ws.match_params.min_frames:
            continue
        usable.append(Source(media.id, media.sha256, path, float(media.duration), media.width, media.height))
    if len(usable) < 2:
        hint = ""
        if repo.media_without_fingerprint(ws.settings_id):
            hint = ", or run `provenance refingerprint` so videos stored with older settings count"
        raise CalibrationError(
            f"calibration needs at least 2 stored videos of {MIN_SOURCE_SECONDS:g} s or more, fingerprinted with the "
            f"current settings and present in the media store; found {len(usable)}. "
            f"Ingest some of your own footage first (`provenance ingest clip.mp4`){hint}")
    return sorted(usable[:sample], key=lambda s: s.media_id)


def related_media(footage: dict[int, frozenset[int]], media_id: int) -> set[int]:
    """Stored videos of the same footage as `media_id` (its footage group, from `footage_of`): matching them
    is not false."""
    return set(footage.get(media_id, ())) - {media_id}


class _SweepWorkspace:
    """The workspace as `find_matches` sees it, at one max_distance of the sweep and over the sweep's indexes
    (each asked once per copy at the widest distance); everything else is the workspace's own."""

    def __init__(self, ws: Workspace, indexes: dict[str, _SweepIndex]) -> None:
        self._ws = ws
        self._indexes = indexes
        self.match_params = ws.match_params

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    def indexes(self) -> dict[str, _SweepIndex]:
        return self._indexes


@contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="provenance-calibrate-") as tmp:
        yield Path(tmp)


def calibrate(ws: Workspace, sample: int = 5, families: list[str] | str | None = None,
              target_precision: float = 0.99, seed: int = 0, workdir: Path | None = None,
              progress: Progress | None = None, thresholds: tuple[int, ...] = SWEEP) -> CalibrationReport:
    """Render, fingerprint and match edited copies of up to `sample` stored videos; store nothing.

    `workdir`: keep the copies there (and reuse them on the next run) instead
    of a temporary directory.  Raises `CalibrationError` when the store has
    too few usable videos or ffmpeg is missing, ValueError for bad arguments.
    """
    chosen = parse_families(families)
    if sample < 1:
        raise ValueError("sample must be at least 1")
    if not 0.0 < target_precision <= 1.0:
        raise ValueError("target precision must be in (0, 1]")
    if shutil.which("ffmpeg") is None:
        raise CalibrationError("ffmpeg not found: install it (apt-get install ffmpeg)")
    params = ws.match_params
    sweep = sorted(set(thresholds) | {params.max_distance})
    sources = pick_sources(ws, sample, seed)
    indexes = {name: _SweepIndex(index, max(sweep)) for name, index in ws.indexes().items()}
    view = _SweepWorkspace(ws, indexes)
    footage = footage_of(ws)
    related = {s.media_id: related_media(footage, s.media_id) for s in sources}
    stored = len(ws.repository.fingerprinted_media_ids(ws.settings_id))
    linked = len(set().union(*related.values()))

    outcomes: list[CopyOutcome] = []
    jobs = [(family, k) for k in range(len(sources)) for family in chosen]
    with _workdir(workdir) as root:
        generated_background: T.Input | None = None
        for n, (family, k) in enumerate(jobs):
            source = sources[k]
            if progress:
                progress(n, len(jobs), f"{family} of media {source.media_id}")
            background, background_id = None, None
            if family == "pip":
                if len(sources) > 1:
                    other = sources[(k + 1) % len(sources)]
                    background, background_id = other.clip(loop=True), other.media_id
                else:
                    if generated_background is None:
                        try:
                            clip = root / f"pip-background-{PIP_BACKGROUND_SEED}.mp4"
                            if not clip.exists():  # made aside, then renamed: a kept workdir never holds half a clip
                                os.replace(make_source_clip(root / f".{clip.name}", seed=PIP_BACKGROUND_SEED), clip)
                            generated_background = T.Input(clip, loop=True)
                        except SampleError as exc:
                            outcomes.append(CopyOutcome(family, source.media_id, error=str(exc)))
                            continue
                    background = replace(generated_background, duration=source.window()[1])
            recipe = recipe_for(family, source, background)
            if recipe is None:
                continue
            outcome = CopyOutcome(family, source.media_id, background_id)
            outcomes.append(outcome)
            expected = {source.media_id} | related[source.media_id]
            if background_id is not None:  # the background really is in the copy
                expected |= {background_id} | related_media(footage, background_id)
            dst = root / f"{family}-{source.sha256[:12]}-{recipe.key()}.mp4"
            try:
                T.render(recipe, dst)
                fp = fingerprint_video(dst, ws.settings, query=True)
            except (T.RenderError, VideoDecodeError, OSError) as exc:
                outcome.error = " ".join(str(exc).split())
                continue
            if workdir is not None:
                outcome.path = str(dst)
            for d in sweep:
                view.match_params = replace(params, max_distance=d)
                matches = find_matches(view, fp, exclude=set())
                ids = {m.media_id for m in matches}
                outcome.found[d] = source.media_id in ids
                outcome.false[d] = sorted(ids - expected)
                if d == params.max_distance:
                    outcome.same_footage = sorted(ids & expected - {source.media_id})
                    hit = next((m for m in matches if m.media_id == source.media_id), None)
                    outcome.query_coverage = hit.query_coverage if hit else None
            for index in indexes.values():
                index.forget()
        if progress:
            progress(len(jobs), len(jobs), "done")

    reports = [summarise(f, [o for o in outcomes if o.family == f], sweep, params.max_distance, target_precision)
               for f in chosen]
    overall = summarise("all", outcomes, sweep, params.max_distance, target_precision)
    return CalibrationReport(settings=ws.settings.key(), match_params=params, target_precision=target_precision,
                             seed=seed, sources=sources, stored_videos=stored, linked_videos=linked,
                             families=reports, overall=overall,
                             copies=outcomes, notes=_notes(overall, sweep, chosen, stored, len(sources)))


def _notes(overall: FamilyReport, sweep: list[int], chosen: list[str], stored: int, sampled: int) -> list[str]:
    notes = []
    if overall.failed:
        notes.append(f"{overall.failed} copies could not be made or read; see the copies' errors (--json)")
    if overall.suggested is not None and overall.suggested.max_distance == max(sweep):
        notes.append(f"precision held up to the widest max_distance tried ({max(sweep)}); wider values were not tried")
    if stored - sampled < 20:
        notes.append(f"only {stored} stored videos could be matched: precision is a rough estimate "
                     "until the store holds more footage")
    if not T.HAVE_FONT and {"caption", "logo", "vertical"} & set(chosen):
        notes.append(f"the font {T.FONT} is missing: caption, logo and vertical copies carry no lettering")
    return notes
