"""False matches as the store grows: a store of many unrelated videos, rich in low-detail footage (issue 12.4).

Real stores are full of footage that looks alike without being the same:
night scenes, smooth gradients, talking heads in front of one wall, text
slides, cellular patterns.  This script renders N unrelated clips from
generators whose parameters are drawn at random per clip (no two clips share
footage), fingerprints them, indexes them as a store does
(`fingerprints.signals.index_fingerprints`, the matcher `match_fingerprint`),
then queries Q further unrelated clips (other seeds) against stores of growing
size.  Every reported appearance is a false one.  Printed per store size:
false appearances per 100 queries, and which generators (stored and query)
the false matches came from; each baseline, on the same indexes in the same
run, is the same matcher with the MatchParams fields given by a
`--baseline-params` changed (repeat the option for several; default: none,
only ours), e.g. `--baseline-params crowd_ratio=0,min_surprise=0` for the
matcher before the crowd ratio and the chance test, or
`--baseline-params store_specificity=false` for the fixed thresholds alone.

Rendering is cheap enough for 10^4 clips on one core: one ffmpeg process
renders 25 clips (byte-identical to one process per clip: ffmpeg's start-up
cost more than a clip's encoding), and each clip is fingerprinted with
`fingerprint_video(..., media=[])`: the frame hashes that `match_fingerprint`
uses, without the per-video keypoint signal, which it never reads.

What the store's crowd costs true matches is measured in the same run: the
seven chair files of the tests (`tests/data/threatexchange-chair/`, one clip
re-encoded, greyed, sepia-toned, logo'd and trimmed) are stored among the
unrelated clips, and each is queried for the other six (42 true pairs).

A real store also holds the matches ingest found between its videos, and the
matcher leaves the copies they name out of a match's crowd
(`MatchParams.known_copies`).  `--stored-matches` gives the matcher those links:
each stored clip matched against all the others (`stored_matches`), with any
false matches between look-alike clips that this makes.

Fingerprints are cached in benchmarks/.cache/unrelated/ (git-ignored).

    python benchmarks/unrelated_store.py --videos 10000 --queries 200 [--sizes 100,1000,10000] \
        [--baseline-params crowd_ratio=0,min_surprise=0] [--baseline-params store_specificity=false] [--json] \
        [--index segmented] [--query-set K[,K...]] [--stored-matches --baseline-params known_copies=0] \
        [--state DIR]

`--state DIR` keeps each store's on-disk indexes and stored matches (8 minutes of matching at 10^4 clips) for the
next run with other `--baseline-params` or query sets; they are built again when the matcher's code changes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fingerprints.align import MatchParams, match_fingerprint  # noqa: E402
from fingerprints.segments import SegmentedHashIndex  # noqa: E402
from fingerprints.signals import index_fingerprints, stored_views  # noqa: E402
from fingerprints.video import fingerprint_video  # noqa: E402
from match_params import parse_params  # noqa: E402

CACHE = REPO / "benchmarks" / ".cache" / "unrelated"
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
WORDS = ("breaking news live update report city council weather storm river bridge market election "
         "football match school police road traffic fire harbour festival museum winter summer").split()

CHAIR_DIR = REPO / "tests" / "data" / "threatexchange-chair"
CHAIR_IDS = 10**8  # media ids of the chair files, apart from every seed

GENERATORS = ("textured", "cellular", "gradient", "night", "slides", "talking_head", "noise_field", "plasma",
              "still_room")
LOW_DETAIL = {"gradient", "night", "slides", "talking_head", "still_room"}


def _colour(rng: np.random.Generator) -> str:
    return "0x%06x" % int(rng.integers(0, 0xFFFFFF))


def _noise(rng: np.random.Generator, strength: int, flags: str = "t") -> str:
    """ffmpeg's noise filter with a seed of its own: its default seed is fixed, which gave every noisy
    clip the same noise, frame by frame (shared footage under another colour, not an unrelated clip)."""
    return f"noise=alls={strength}:allf={flags}:all_seed={int(rng.integers(0, 2**31 - 1))}"


def source_graph(kind: str, rng: np.random.Generator, seconds: float, size: str = "192x108", fps: int = 15) -> str:
    """An ffmpeg lavfi graph for one clip of `kind`, its parameters drawn from `rng`."""
    w, h = (int(v) for v in size.split("x"))
    if kind == "textured":
        x, y = rng.uniform(-2.0, 0.5), rng.uniform(-1.2, 1.2)
        return (f"mandelbrot=size={size}:rate={fps}:start_x={x}:start_y={y}:start_scale={rng.uniform(0.5, 3)}"
                f":end_scale={rng.uniform(0.01, 0.3)}:end_pts={seconds:.1f}:maxiter={int(rng.integers(50, 400))}"
                f":inner={rng.choice(['black', 'period', 'convergence', 'mincol'])},hue=h={rng.uniform(0, 360):.0f}")
    if kind == "cellular":
        if rng.random() < 0.5:
            return (f"cellauto=size={size}:rate={fps}:rule={int(rng.integers(1, 255))}:seed={int(rng.integers(1, 1e9))}"
                    f":scroll={int(rng.integers(0, 2))}:random_fill_ratio={rng.uniform(0.2, 0.8):.2f}")
        return (f"life=size={size}:rate={fps}:seed={int(rng.integers(1, 1e9))}:ratio={rng.uniform(0.1, 0.6):.2f}"
                f":mold={int(rng.integers(0, 50))}:life_color={_colour(rng)}:death_color={_colour(rng)}")
    if kind == "gradient":
        colours = ":".join(f"c{i}={_colour(rng)}" for i in range(int(rng.integers(2, 5))))
        # ffmpeg turns its gradients at one steady rate, so any two of a type were one picture retimed (session 26);
        # the clip's own clock is warped instead: the turn speeds up and slows down, at a period drawn per clip
        period, swing, phase = rng.uniform(1.5, 4.0), rng.uniform(0.5, 0.9), rng.uniform(0, 2 * np.pi)
        lag = swing * period / (2 * np.pi)  # below period / 2 pi: time never runs backwards
        return (f"gradients=size={size}:rate={fps}:{colours}:speed={rng.uniform(0.001, 0.05):.4f}"
                f":type={rng.choice(['linear', 'radial', 'circular', 'spiral'])}:seed={int(rng.integers(1, 1e9))},"
                f"setpts='(T+{lag:.3f}*sin({2 * np.pi / period:.3f}*T+{phase:.2f}){-lag * np.sin(phase):+.3f})/TB',"
                f"fps={fps}")
    if kind == "night":
        x, y = rng.uniform(-2.0, 0.5), rng.uniform(-1.2, 1.2)
        return (f"mandelbrot=size={size}:rate={fps}:start_x={x}:start_y={y}:start_scale={rng.uniform(0.5, 3)}"
                f":end_scale={rng.uniform(0.2, 1.0)}:end_pts={seconds:.1f},"
                f"eq=brightness={rng.uniform(-0.45, -0.25):.2f}:contrast={rng.uniform(0.3, 0.7):.2f},"
                f"{_noise(rng, int(rng.integers(4, 20)))},gblur=sigma={rng.uniform(0.5, 3):.1f}")
    if kind == "slides":
        parts = []
        per = rng.uniform(1.5, 3.0)
        n = max(1, int(np.ceil(seconds / per)))
        for k in range(n):
            words = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 5))))
            parts.append(f"drawtext=fontfile={FONT}:text='{words}':fontsize={int(rng.integers(12, 24))}"
                         f":fontcolor={_colour(rng)}:x={int(rng.integers(4, w // 3))}:y={int(rng.integers(4, h - 30))}"
                         f":enable='between(t,{k * per:.2f},{(k + 1) * per:.2f})'")
        text = ",".join(parts) if os.path.exists(FONT) else "null"
        return f"color=c={_colour(rng)}:size={size}:rate={fps},{text}"
    if kind == "talking_head":
        # a head sways and nods as people do, not along one sine: with one sine at one rate, every clip's head
        # moved along the same path as every other's, retimed (session 26); the shading moves at a rate of its own
        cx, cy, r = rng.uniform(0.3, 0.7) * w, rng.uniform(0.35, 0.6) * h, rng.uniform(0.15, 0.3) * h
        wall = _colour(rng)
        sway = (f"{rng.uniform(2, 8):.1f}*sin({rng.uniform(0.5, 2.0):.2f}*T+{rng.uniform(0, 6.3):.2f})"
                f"+{rng.uniform(1, 4):.1f}*sin({rng.uniform(1.3, 3.5):.2f}*T+{rng.uniform(0, 6.3):.2f})")
        nod = f"{rng.uniform(1, 4):.1f}*sin({rng.uniform(0.4, 2.5):.2f}*T+{rng.uniform(0, 6.3):.2f})"
        return (f"color=c={wall}:size={size}:rate={fps},{_noise(rng, int(rng.integers(2, 8)))},"
                f"geq=lum='if(lt(hypot(X-({cx:.1f}+{sway}),(Y-({cy:.1f}+{nod}))*0.8),{r:.1f}),"
                f"{int(rng.integers(120, 220))}+10*sin(Y/3+T*{rng.uniform(1.5, 6.0):.2f}),lum(X,Y))'"
                f":cb='cb(X,Y)':cr='cr(X,Y)'")
    if kind == "noise_field":
        return (f"color=c={_colour(rng)}:size={size}:rate={fps},"
                f"{_noise(rng, int(rng.integers(20, 90)), str(rng.choice(['t', 't+u', 'p'])))},"
                f"gblur=sigma={rng.uniform(0, 4):.1f}")
    if kind == "plasma":  # smooth colour waves, sums of sines drawn per clip: no two clips share a picture
        def wave() -> str:  # computed at half size (geq is slow) in full-size units, then scaled up
            return (f"128+110*sin(2*X/{rng.uniform(8, 40):.1f}+2*Y/{rng.uniform(8, 40):.1f}*{rng.choice([-1, 1])}"
                    f"+T*{rng.uniform(0.3, 2.5):.2f}+{rng.uniform(0, 6.3):.2f})"
                    f"*cos(hypot(2*X-{rng.uniform(0, w):.0f},2*Y-{rng.uniform(0, h):.0f})/{rng.uniform(6, 30):.1f}"
                    f"-T*{rng.uniform(0.3, 2.5):.2f})")
        return (f"nullsrc=size={w // 2}x{h // 2}:rate={fps},geq=r='{wave()}':g='{wave()}':b='{wave()}',"
                f"scale={w}:{h}:flags=bicubic")
    if kind == "still_room":  # a still camera on a plain room: almost nothing moves
        return (f"color=c={_colour(rng)}:size={size}:rate={fps},"
                f"drawbox=x={int(rng.integers(0, w // 2))}:y={int(rng.integers(0, h // 2))}:w={int(rng.integers(20, w // 2))}"
                f":h={int(rng.integers(20, h // 2))}:color={_colour(rng)}:t=fill,"
                f"drawbox=x='mod(t*{rng.uniform(5, 30):.1f},{w})':y={int(rng.integers(0, h - 20))}:w=8:h=16"
                f":color={_colour(rng)}:t=fill,{_noise(rng, int(rng.integers(2, 8)))}")
    raise ValueError(kind)


def recipe(kind: str, seed: int) -> tuple[float, str]:
    """(seconds, ffmpeg graph) of the clip of `seed`."""
    rng = np.random.default_rng(seed)
    seconds = float(rng.uniform(3.0, 8.0))
    return seconds, source_graph(kind, rng, seconds)


ENCODE = ("-an", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "26", "-pix_fmt", "yuv420p")
BATCH = 25  # clips rendered by one ffmpeg process: its start-up cost more than many clips' encoding


def render(kind: str, seed: int, path: Path) -> float:
    seconds, graph = recipe(kind, seed)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", "-f", "lavfi", "-t", f"{seconds:.2f}", "-i", graph,
                    *ENCODE, str(path)], check=True, capture_output=True, timeout=300)
    return seconds


def render_many(clips: list[tuple[str, int, Path]]) -> None:
    """Each (kind, seed, path) rendered as `render` does, all by one ffmpeg process (one input and one output
    per clip, the same options, so the same files); on any failure, clip by clip."""
    command = ["ffmpeg", "-v", "error", "-y", "-nostdin"]
    for kind, seed, _ in clips:
        seconds, graph = recipe(kind, seed)
        command += ["-f", "lavfi", "-t", f"{seconds:.2f}", "-i", graph]
    for n, (_, _, path) in enumerate(clips):
        command += ["-map", f"{n}:v", *ENCODE, str(path)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=300 + 30 * len(clips))
    except subprocess.SubprocessError:
        for kind, seed, path in clips:
            render(kind, seed, path)


def cache_path(seed: int) -> tuple[str, Path]:
    """(generator, cache file) of the clip of `seed`: keyed by the recipe, so a changed generator renders again."""
    kind = GENERATORS[seed % len(GENERATORS)]
    seconds, graph = recipe(kind, seed)
    key = hashlib.sha256(f"{seconds:.2f} {graph}".encode()).hexdigest()[:12]
    return kind, CACHE / f"{seed}-{key}.pkl"


def fingerprint_clip(path: Path):
    """The frame hashes the matcher under test uses, and nothing else: no per-video media signals (the
    keypoint collector), which `match_fingerprint` never reads (`media=[]`; the frame hashes are the same)."""
    return fingerprint_video(path, media=[])


def fingerprints_for(seeds: list[int], log=print) -> dict[int, tuple[str, object]]:
    """(generator, fingerprint) per seed, rendered and fingerprinted once, then cached.

    One process does it all, in batches of `BATCH` clips: one ffmpeg process renders a batch, then each clip
    is fingerprinted (one decoding ffmpeg each, as in an ingest)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out: dict[int, tuple[str, object]] = {}
    started = time.perf_counter()
    todo: list[tuple[str, int, Path]] = []
    for seed in seeds:
        kind, cached = cache_path(seed)
        if cached.exists():
            out[seed] = pickle.loads(cached.read_bytes())
        else:
            todo.append((kind, seed, cached))
    if len(out):
        log(f"  {len(out)}/{len(seeds)} clips from the cache ({time.perf_counter() - started:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="unrelated-") as tmp:
        for first in range(0, len(todo), BATCH):
            batch = todo[first:first + BATCH]
            clips = [(kind, seed, Path(tmp) / f"{seed}.mp4") for kind, seed, _ in batch]
            render_many(clips)
            for (kind, seed, cached), (_, _, clip) in zip(batch, clips):
                value = (kind, fingerprint_clip(clip))
                clip.unlink()
                cached.with_suffix(".tmp").write_bytes(pickle.dumps(value))
                os.replace(cached.with_suffix(".tmp"), cached)
                out[seed] = value
            done = first + len(batch)
            if done // 250 != first // 250 or done == len(todo):
                log(f"  {done}/{len(todo)} clips rendered ({time.perf_counter() - started:.0f} s)")
    return out


def chair_family() -> dict[int, object]:
    """The chair files' fingerprints (frame hashes only, as the clips'), by media id from `CHAIR_IDS`."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {}
    for n, path in enumerate(sorted(CHAIR_DIR.glob("chair-*.mp4"))):
        cached = CACHE / f"chair-{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}.pkl"
        if not cached.exists():
            cached.write_bytes(pickle.dumps(fingerprint_clip(path)))
        out[CHAIR_IDS + n] = pickle.loads(cached.read_bytes())
    return out


def chair_pairs(chairs: dict[int, object], indexes: dict, durations: dict, params: MatchParams,
                copies=None) -> int:
    """True pairs found among the chair files stored with the unrelated clips (each queried for the others)."""
    return sum(len({m.media_id for m in match_fingerprint(fp, indexes, durations, params, exclude={media_id},
                                                          copies=copies)}
                   & set(chairs)) for media_id, fp in chairs.items())


def reach(links: dict[int, set[int]], media_ids, hops: int) -> dict[int, set[int]]:
    """Per media id, the media `links` connect it to through at most `hops` links (as
    `SqlRepository.linked_media` reads them from stored matches)."""
    out = {}
    for m in media_ids:
        seen, frontier = set(), {m}
        for _ in range(hops):
            frontier = set().union(*(links.get(n, set()) for n in frontier)) - seen - {m}
            seen |= frontier
        out[m] = seen
    return out


def stored_matches(stored: dict[int, object], indexes: dict, params: MatchParams, log=print,
                   passes: int = 2) -> dict[int, set[int]]:
    """What a store's stored matches would say: each stored video matched against all the others (ingest matches
    each against those stored before it; this is that and more), linked either way.  Per media id, the media it
    is linked to: `match_fingerprint`'s `copies`.  Known copies make more matches, which ingest stores in turn:
    the second pass matches again with the first pass's links as known copies, and keeps both passes' links."""
    durations = {media_id: fp.duration for media_id, fp in stored.items()}
    links: dict[int, set[int]] = {media_id: set() for media_id in stored}
    started = time.perf_counter()
    for n_pass in range(passes):
        known = {k: set(v) for k, v in links.items()}
        copies = (lambda ids: reach(known, ids, params.known_copies)) if n_pass else None
        for n, (media_id, fp) in enumerate(stored.items()):
            for m in match_fingerprint(fp, indexes, durations, params, exclude={media_id}, copies=copies):
                links[media_id].add(m.media_id)
                links[m.media_id].add(media_id)
            if (n + 1) % 2000 == 0:
                log(f"  pass {n_pass + 1}: {n + 1}/{len(stored)} stored videos matched against the store "
                    f"({time.perf_counter() - started:.0f} s)")
        log(f"  pass {n_pass + 1}: {sum(map(len, links.values())) // 2} stored matches")
    return links


def segmented_indexes(fingerprints: dict[int, object], directory: Path) -> dict:
    """The on-disk indexes a workspace queries (`SegmentedHashIndex`, one per stored view), built from the
    fingerprints in media-id order as a store's frame rows are."""
    out = {}
    for view in stored_views():
        media, times, hashes = [], [], []
        for media_id in sorted(fingerprints):
            frames = fingerprints[media_id].frames
            positions, values = view.hashes_of(frames, stored=True)
            media.append(np.full(len(positions), media_id, dtype=np.int64))
            times.append(np.array([frames[p].timestamp for p in positions], dtype=np.float64))
            hashes.append(np.asarray(values, dtype=np.uint64))
        media, times, hashes = (np.concatenate(c) for c in (media, times, hashes))
        out[view.name] = SegmentedHashIndex.build(directory / view.name,
                                                  [(np.arange(1, len(hashes) + 1), media, times, hashes)])
    return out


def state_key(seed: int, size: int, index: str) -> str:
    """A kept store's directory name: its clips (`--seed`, size, the fingerprint cache), the index kind and the
    matcher's code (every module under fingerprints/ and MatchParams' defaults), which the stored matches
    depend on."""
    digest = hashlib.sha256(f"{seed} {size} {index} {CACHE.resolve()} {MatchParams()!r}".encode())
    for path in sorted((REPO / "fingerprints").glob("*.py")):
        digest.update(path.read_bytes())
    return f"store-{seed}-{size}-{digest.hexdigest()[:12]}"


def kept_indexes(fingerprints: dict[int, object], directory: Path, log=print) -> dict:
    """`segmented_indexes` kept in `directory`: opened when a finished build is there, else built there."""
    done = directory / "complete"
    if done.exists():
        log(f"  indexes from {directory}")
        return {view.name: SegmentedHashIndex.open(directory / view.name) for view in stored_views()}
    if directory.exists():
        shutil.rmtree(directory)  # an interrupted build
    directory.mkdir(parents=True)
    out = segmented_indexes(fingerprints, directory)
    done.write_text("")
    return out


def kept_links(path: Path, log=print) -> dict[int, set[int]] | None:
    if not path.exists():
        return None
    log(f"  stored matches from {path}")
    return pickle.loads(path.read_bytes())


def save_links(path: Path, links: dict[int, set[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".tmp").write_bytes(pickle.dumps(links))
    os.replace(path.with_suffix(".tmp"), path)


def false_matches(store: dict[int, tuple[str, object]], queries: dict[int, tuple[str, object]],
                  params: MatchParams, indexes: dict | None = None, chairs: dict[int, object] | None = None,
                  links: dict[int, set[int]] | None = None) -> dict:
    """False appearances of `queries` in `store`; with `chairs` (stored in `indexes` too), the chair pairs found;
    with `links` (`stored_matches`), the store's known copies handed to the matcher."""
    copies = None if links is None else (lambda ids: reach(links, ids, params.known_copies))
    fps = {seed: fp for seed, (_, fp) in store.items()}
    indexes = indexes if indexes is not None else index_fingerprints(fps)
    durations = {seed: fp.duration for seed, fp in {**fps, **(chairs or {})}.items()}
    by_kind: dict[str, int] = {}
    by_query_kind: dict[str, int] = {}
    queries_with_false = 0
    total = 0
    started = time.process_time()
    listed = []
    for seed, (kind, fp) in queries.items():
        found = match_fingerprint(fp, indexes, durations, params, copies=copies)
        total += len(found)
        queries_with_false += bool(found)
        for m in found:
            k = store[m.media_id][0] if m.media_id in store else "chair"
            by_kind[k] = by_kind.get(k, 0) + 1
            by_query_kind[kind] = by_query_kind.get(kind, 0) + 1
            listed.append({"query": seed, "query_generator": kind, "stored": m.media_id, "stored_generator": k,
                           "mean_distance": round(m.mean_distance, 2), "matched_frames": m.matched_frames,
                           "specific_frames": m.specific_frames, "motion_frames": m.motion_frames,
                           "speed": round(m.speed, 3), "mirrored": m.mirrored, "score": round(m.score, 2),
                           "query_coverage": m.query_coverage, "stored_coverage": m.stored_coverage})
    return {"stored": len(store), "queries": len(queries), "false_appearances": total,
            "per_100_queries": round(100.0 * total / max(1, len(queries)), 2),
            "queries_with_a_false_match": queries_with_false, "by_stored_generator": by_kind,
            "by_query_generator": by_query_kind,
            "query_cpu_ms": round(1000 * (time.process_time() - started) / max(1, len(queries)), 1),
            "chair_pairs_found": chair_pairs(chairs, indexes, durations, params, copies) if chairs else None,
            "chair_pairs": len(chairs) * (len(chairs) - 1) if chairs else None,
            "false": listed}


def main(argv: list[str] | None = None) -> int:
    global CACHE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=10000, help="unrelated clips in the largest store")
    parser.add_argument("--queries", type=int, default=200, help="unrelated query clips (other seeds)")
    parser.add_argument("--sizes", default=None, help="store sizes, e.g. 100,1000,10000 (default: 1%%, 10%%, all)")
    parser.add_argument("--seed", type=int, default=1, help="which clips: stores use seeds from seed*10^6 up")
    parser.add_argument("--query-set", default="0",
                        help="which queries: set k is the k-th run of --queries seeds after the first (set 0); "
                             "tune on one set, report another; several (e.g. 0,2,3) are each matched against the "
                             "same store, built once")
    parser.add_argument("--baseline-params", metavar="KEY=VALUE,...", action="append", default=[],
                        help="also measure the matcher with these MatchParams changed, e.g. store_specificity=false "
                             "(repeatable: one baseline each)")
    parser.add_argument("--index", choices=["memory", "segmented"], default="memory",
                        help="the indexes matched against: in memory (`MultiIndexHashIndex`, what calibrate and the "
                             "tests use) or on disk (`SegmentedHashIndex`, what a workspace queries)")
    parser.add_argument("--stored-matches", action="store_true",
                        help="give the matcher the store's known copies (MatchParams.known_copies): each stored video "
                             "is first matched against the others, as ingest would have (`stored_matches`); compare "
                             "with --baseline-params known_copies=0")
    parser.add_argument("--cache", type=Path, default=None,
                        help=f"where rendered clips' fingerprints are kept (default {CACHE.relative_to(REPO)}); the key "
                             "is the clip's recipe, not the code: a new directory fingerprints again with this code")
    parser.add_argument("--state", type=Path, default=None,
                        help="keep each store's on-disk indexes (--index segmented) and stored matches "
                             "(--stored-matches) in this directory, so that a later run with other --baseline-params "
                             "or query sets only matches the queries; kept per store and per matcher code (a change "
                             "under fingerprints/ or to MatchParams' defaults builds them again)")
    parser.add_argument("--list", action="store_true", help="also list every false appearance (--json always has them)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.cache is not None:
        CACHE = args.cache
    baselines = [(text, parse_params(text, "--baseline-params")) for text in args.baseline_params]
    base = args.seed * 1_000_000
    store_seeds = list(range(base, base + args.videos))
    query_sets = [int(k) for k in str(args.query_set).split(",")]
    query_seeds = {k: list(range(base + 900_000 + k * args.queries, base + 900_000 + (k + 1) * args.queries))
                   for k in query_sets}
    log = (lambda m: print(m, file=sys.stderr, flush=True))
    log(f"rendering and fingerprinting {args.videos} stored and {args.queries} query clips per set (cached)")
    store = fingerprints_for(store_seeds, log)
    query_fps = {k: fingerprints_for(seeds, log) for k, seeds in query_seeds.items()}
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else sorted({max(1, args.videos // 100),
                                                                               max(1, args.videos // 10), args.videos})
    chairs = chair_family()
    results = []
    for size in sizes:
        subset = {s: store[s] for s in store_seeds[:size]}
        stored = {**{seed: fp for seed, (_, fp) in subset.items()}, **chairs}
        kept = None if args.state is None else args.state / state_key(args.seed, size, args.index)
        scratch = tempfile.TemporaryDirectory(prefix="unrelated-index-")
        if args.index == "segmented":
            indexes = kept_indexes(stored, kept / "index", log) if kept else segmented_indexes(stored,
                                                                                             Path(scratch.name))
        else:
            indexes = index_fingerprints(stored)
        links = None
        if args.stored_matches:
            links = kept_links(kept / "stored-matches.pkl", log) if kept else None
            if links is None:
                links = stored_matches(stored, indexes, MatchParams(), log)
                if kept:
                    save_links(kept / "stored-matches.pkl", links)
        if links is not None:
            unrelated = sum(len(v - set(chairs)) for k, v in links.items() if k not in chairs) // 2
            log(f"  store {size}: {unrelated} stored matches between unrelated clips, "
                f"{sum(len(links[c] & set(chairs)) for c in chairs) // 2} among the chair files")
        runs = [("ours", "", MatchParams())] + [(f"baseline{k + 1}" if len(baselines) > 1 else "baseline", text,
                                                 params) for k, (text, params) in enumerate(baselines)]
        rows = {}
        for k in query_sets:
            label = f" set {k}" if len(query_sets) > 1 else ""
            for name, changed, params in runs:
                row = rows[k, name] = false_matches(subset, query_fps[k], params, indexes, chairs, links)
                row["matcher"] = name
                row["query_set"] = k
                row["changed_params"] = changed
                row["low_detail_share"] = round(sum(g in LOW_DETAIL for g, _ in subset.values()) / len(subset), 3)
                results.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
                else:
                    print(f"store {row['stored']:>6}{label} {name:>8}: {row['per_100_queries']:6.2f} false "
                          f"appearances per 100 queries ({row['queries_with_a_false_match']} of {row['queries']} "
                          f"queries); {row['query_cpu_ms']} ms CPU per query; chair pairs found "
                          f"{row['chair_pairs_found']}/{row['chair_pairs']}; by stored generator "
                          f"{row['by_stored_generator']}, by query generator {row['by_query_generator']}", flush=True)
                    if args.list:
                        for m in row["false"]:
                            print("  false: " + " ".join(f"{key}={v}" for key, v in m.items()), flush=True)
        for index in indexes.values():
            getattr(index, "close", lambda: None)()
        scratch.cleanup()
        for k in query_sets:
            for name, changed, _ in runs[1:]:
                if args.json:
                    continue
                ours, base = rows[k, "ours"], rows[k, name]
                ratio = (f"{ours['false_appearances'] / base['false_appearances']:.2f}" if base["false_appearances"]
                         else "n/a (baseline had none)")
                label = f" set {k}" if len(query_sets) > 1 else ""
                print(f"store {size:>6}{label} {name:>9} ratio ({changed}): false appearances ours/baseline "
                      f"{ratio}; CPU per query {ours['query_cpu_ms'] / max(0.1, base['query_cpu_ms']):.2f}x",
                      flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
