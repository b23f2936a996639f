"""Re-upload suite v2: random edits on both sides, drawn per seed, so no matcher can be fitted to it.

Version 1 (`reupload_suite_v1.py`) had one fixed transform per row, and the
matcher reached recall 1.00 on it while other footage with other edits found
two thirds of the true posts.  Here every edit parameter is drawn at random
for each seed (`monitor.synth.random_edits`), stored posts are edited as heavily as
queries, and footage comes from several real sources plus varied generated
clips (`benchmarks/reupload/families.py` describes the corpus,
`benchmarks/reupload/footage.py` the sources and their licences).

Our matcher is scored through the product's jobs (`benchmarks/reupload/ours.py`):
every stored post is ingested with its claimed time into a store in a
temporary data dir, and find-earliest runs on every query.  vPDQ, TMK+PDQF
and framewise pHash are scored on the same files in the same run
(`benchmarks/reupload/peers.py`).  Scores per query family and per
stored-side situation (`benchmarks/reupload/family_scoring.py`).

Protocol: tune on seeds 1 and 2; seed 3 is the result, and no one tunes on it.

    python benchmarks/reupload_suite.py --seed 3            # the reported run
    python benchmarks/reupload_suite.py --seed 1 --quick    # a smoke run (a few families)

Rendered footage and items are cached in benchmarks/.cache/reupload2/ (git-ignored),
keyed by their ffmpeg recipes; peer hashes of vPDQ and pHash too.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from reupload import ours  # noqa: E402
from reupload.families import Suite, build_suite, materialise  # noqa: E402
from reupload.family_scoring import Answer, Score, pair_recall, score  # noqa: E402
from reupload.footage import REAL_LICENCES  # noqa: E402
from reupload.peers import available_peers, cpu_seconds  # noqa: E402

OURS = "ours"
SITUATIONS = ("clean-stored", "edited-stored-only", "leak-excerpt-first", "clean-vs-edited-stored", "edit-vs-edit")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_ours(suite: Suite, keep: Path | None) -> tuple[dict[str, Answer], dict]:
    stored = [i for i in suite.stored]
    posts = [ours.StoredPost(i.name, i.path, i.url, i.uploader, i.claimed) for i in stored]
    by_url = {i.url: i.name for i in stored}
    tmp = None
    if keep is not None:
        if keep.exists() and any(keep.iterdir()):
            raise SystemExit(f"--keep-store {keep}: the directory is not empty")
        data_dir = keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="reupload2-store-")
        data_dir = Path(tmp.name)
    try:
        handle = ours.build_store(data_dir, posts, log)
        answers: dict[str, Answer] = {}
        errors = list(handle.failures)
        c0, t0 = cpu_seconds(), time.perf_counter()
        for n, q in enumerate(suite.queries, 1):
            try:
                found = ours.find(handle, q.path)
            except Exception as exc:  # a query the product refuses scores as "found nothing"
                errors.append(f"{q.name}: {type(exc).__name__}: {exc}")
                found = []
            names = [by_url[a.url] for a in found if a.url in by_url]
            answers[q.name] = Answer(
                found=names, first=names[0] if names else None,
                segments={by_url[a.url]: a.segments for a in found if a.url in by_url},
                speeds={by_url[a.url]: a.speed for a in found if a.url in by_url})
            if n % 25 == 0:
                log(f"  ours: find-earliest {n}/{len(suite.queries)}")
        find_cpu, find_wall = cpu_seconds() - c0, time.perf_counter() - t0
        size = ours.store_bytes(handle)
        ours.close(handle)
    finally:
        if tmp is not None:
            tmp.cleanup()
    video_s = sum(i.duration for i in stored)
    return answers, {"ingest_cpu_s": round(handle.ingest_cpu_s, 1), "ingest_wall_s": round(handle.ingest_wall_s, 1),
                     "find_cpu_s": round(find_cpu, 1), "find_wall_s": round(find_wall, 1),
                     "stored_video_s": round(video_s, 1), "store_bytes": size,
                     "database_mb_per_video_hour": round(size["database"] / 1e6 * 3600 / video_s, 1) if video_s else None,
                     "errors": errors}


def run_peer(peer, suite: Suite) -> tuple[dict[str, Answer], dict]:
    c0, t0 = cpu_seconds(), time.perf_counter()

    def hashes(item):
        h = peer.hasher(item.path)
        return peer.derive(h) if peer.derive else h
    stored = {}
    for n, i in enumerate(suite.stored, 1):
        stored[i.name] = hashes(i)
        if n % 50 == 0:
            log(f"  {peer.name}: hashed {n}/{len(suite.stored)} stored")
    matcher = peer.matcher(stored)
    answers = {q.name: Answer(found=sorted(matcher.matches(hashes(q), exclude=""))) for q in suite.queries}
    return answers, {"cpu_s_incl_cache": round(cpu_seconds() - c0, 1), "wall_s": round(time.perf_counter() - t0, 1)}


def by_role(q) -> list[str]:
    return [q.role]


def by_situation(suite: Suite):
    def group(q) -> list[str]:
        situation = suite.situation.get(q.family or "")
        if situation is None:
            return []
        out = [situation]
        if situation != "clean-stored":
            out.append("clean-vs-edited-stored" if q.role == "clean" else "edit-vs-edit")
        return out
    return group


def by_footage(suite: Suite):
    """Real footage (camera clips) against each generated kind, by the query's own footage family."""
    def group(q) -> list[str]:
        kind = suite.families.get(q.family or "")
        if kind is None:
            return []
        return ["real footage" if kind == "real" else "generated footage", f"kind: {kind}"]
    return group


def _f(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(scores: dict[str, dict[str, Score]], methods: list[str], rows: list[str], first: str) -> str:
    peers = [m for m in methods if m != OURS]
    header = [first, "n"] + [f"{m} R/P/E" for m in methods] + ["R ours/best", "E ours/best", "place", "speed",
                                                                 "false (distr.)"]
    lines = [header]
    for row in rows + ["all"]:
        o = scores[OURS].get(row)
        if o is None:
            continue
        cells = [row, str(o.queries)]
        for m in methods:
            s = scores[m].get(row, Score())
            cells.append(f"{_f(s.recall)}/{_f(s.precision)}/{_f(s.earliest)}")
        for attr in ("recall", "earliest"):
            best = max((getattr(scores[p].get(row, Score()), attr) or 0.0 for p in peers), default=0.0)
            mine = getattr(o, attr)
            cells.append("-" if mine is None or not peers else "inf" if best == 0 and mine > 0 else
                         "-" if best == 0 else f"{mine / best:.2f}")
        cells += [f"{o.placement_correct}/{o.placement_total}" if o.placement_total else "-",
                  f"{o.speed_correct}/{o.speed_total}" if o.speed_total else "-",
                  f"{o.false_matches} ({o.false_to_distractors})"]
        lines.append(cells)
    widths = [max(len(r[i]) for r in lines) for i in range(len(header))]
    out = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in lines]
    out.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


def composition(suite: Suite) -> dict:
    kinds: dict[str, int] = {}
    for kind in suite.families.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    roles: dict[str, int] = {}
    for q in suite.queries:
        roles[q.role] = roles.get(q.role, 0) + 1
    stored_roles: dict[str, int] = {}
    for s in suite.stored:
        stored_roles[s.role] = stored_roles.get(s.role, 0) + 1
    real = sorted({s.name for s in suite.sources.values() if s.kind == "real"})
    return {"families": len(suite.families), "family_kinds": kinds, "items": len(suite.items),
            "stored": len(suite.stored), "queries": len(suite.queries), "query_roles": roles,
            "stored_roles": stored_roles, "distractor_stored": sum(s.distractor for s in suite.stored),
            "distractor_queries": sum(q.distractor for q in suite.queries),
            "situations": {k: list(suite.situation.values()).count(k) for k in SITUATIONS[:3]},
            "real_sources": {r: REAL_LICENCES.get(r, "") for r in real},
            "video_s": round(sum(i.duration for i in suite.items), 1)}


def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {"nproc": os.cpu_count(), "cpu": model, "load_average_at_start": os.getloadavg(),
            "python": platform.python_version(), "ffmpeg": ffmpeg}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1, help="the corpus seed (tune on 1-2; seed 3 is the result)")
    parser.add_argument("--quick", action="store_true", help="a few footage families only (a smoke run)")
    parser.add_argument("--families", help="comma-separated query families to run (default: all)")
    parser.add_argument("--json", action="store_true", help="print everything as JSON instead of tables")
    parser.add_argument("--no-peers", action="store_true", help="score only our matcher")
    parser.add_argument("--keep-store", type=Path, metavar="DIR", help="build our store in DIR (empty) and keep it")
    parser.add_argument("--save-json", type=Path, metavar="FILE", help="also write the --json output to FILE")
    parser.add_argument("--render-workers", type=int, default=2, help="ffmpeg renders at once (default 2)")
    args = parser.parse_args()

    info = machine()
    t_start = time.perf_counter()
    suite = build_suite(args.seed, quick=args.quick)
    if args.families:
        wanted = set(args.families.split(","))
        suite.items = [i for i in suite.items if i.side == "stored" or i.role in wanted]
    log(f"seed {args.seed}: {len(suite.items)} items ({len(suite.stored)} stored, {len(suite.queries)} queries); "
        f"rendering what is not cached")
    c0 = cpu_seconds()
    materialise(suite, log, workers=args.render_workers)
    render_s = time.perf_counter() - t_start
    render_cpu = cpu_seconds() - c0

    log("ours: ingest every stored post, find-earliest on every query")
    answers = {}
    answers[OURS], ours_timing = run_ours(suite, args.keep_store)
    timings = {OURS: ours_timing}
    methods = [OURS]
    notes = list(suite.notes)
    if not args.no_peers:
        peers, peer_notes = available_peers()
        notes += peer_notes
        for peer in peers:
            log(f"peer: {peer.name}")
            answers[peer.name], timings[peer.name] = run_peer(peer, suite)
            methods.append(peer.name)
    total_s = time.perf_counter() - t_start

    roles = [r for r in ("clean", "mirror", "rotate-zoom", "perspective", "stretch", "crop-offcentre", "pad-colour",
                         "pip-split", "screen-recording", "speed-extreme", "fps", "filter", "lowres", "overlay",
                         "remix", "excerpt", "chain", "compilation", "real-edit", "distractor")
             if any(q.role == r for q in suite.queries)]
    per_role = {m: score(suite, answers[m], by_role) for m in methods}
    per_situation = {m: score(suite, answers[m], by_situation(suite)) for m in methods}
    per_footage = {m: score(suite, answers[m], by_footage(suite)) for m in methods}
    stored_side = {m: pair_recall(suite, answers[m]) for m in methods}
    comp = composition(suite)
    result = {"seed": args.seed, "quick": args.quick, "machine": info, "composition": comp, "notes": notes,
              "timings": timings, "render_wall_s": round(render_s, 1), "render_cpu_s": round(render_cpu, 1),
              "total_wall_s": round(total_s, 1), "methods": methods,
              "by_query_family": {m: {k: v.as_dict() for k, v in s.items()} for m, s in per_role.items()},
              "by_stored_situation": {m: {k: v.as_dict() for k, v in s.items()} for m, s in per_situation.items()},
              "by_footage": {m: {k: v.as_dict() for k, v in s.items()} for m, s in per_footage.items()},
              "by_stored_post": stored_side,
              "answers": {m: {q: a.found for q, a in answers[m].items()} for m in methods},
              "items": [{"name": i.name, "side": i.side, "role": i.role, "family": i.family, "edits": i.edits,
                         "parts": [vars(p) for p in i.parts], "claimed": i.claimed and i.claimed.isoformat(),
                         "account": i.account, "path": str(i.path)} for i in suite.items]}
    if args.save_json:
        args.save_json.write_text(json.dumps(result, indent=1, default=str))
    if args.json:
        print(json.dumps(result, indent=1, default=str))
        return 0
    print(f"re-upload suite v2, seed {args.seed}{' (quick)' if args.quick else ''}: {comp['families']} footage "
          f"families, {comp['items']} items ({comp['stored']} stored, {comp['queries']} queries; "
          f"{comp['video_s']:.0f} s of video); {info['nproc']} CPUs ({info['cpu']}), load "
          f"{info['load_average_at_start'][0]:.2f} at start")
    print("R/P/E = recall / precision / earliest-correct; place = excerpts of >= 3 s placed within 1 s (ours); "
          "speed = speed within 5% where the copy is retimed (ours); false = our false pairs (to distractors)\n")
    print(table(per_role, methods, roles, "query family"))
    print()
    print(table(per_situation, methods, list(SITUATIONS), "stored side"))
    print()
    footage_rows = ["real footage", "generated footage"] + sorted(
        k for k in per_footage[OURS] if k.startswith("kind: ") and k != "kind: real")
    print(table(per_footage, methods, [r for r in footage_rows if r in per_footage[OURS]], "footage"))
    print("\nrecall by what the true stored post is (found/pairs): " + "; ".join(
        f"{k}: " + ", ".join(f"{m} {stored_side[m][k][0]}/{stored_side[m][k][1]}" for m in methods)
        for k in stored_side[OURS]))
    speeds = per_role[OURS]["all"].speed_pairs if "all" in per_role[OURS] else []
    if speeds:
        print("speed (true -> ours): " + ", ".join(f"{k:g}->{'-' if g is None else f'{g:g}'}" for k, g in speeds))
    ot = timings[OURS]
    print(f"\nours: ingest {ot['ingest_cpu_s']} CPU s ({ot['ingest_wall_s']} s wall) for {ot['stored_video_s']:.0f} s "
          f"of stored video; find-earliest {ot['find_cpu_s']} CPU s for {len(suite.queries)} queries; database "
          f"{ot['store_bytes']['database'] / 1e6:.1f} MB ({ot['database_mb_per_video_hour']} MB per hour of video), "
          f"media {ot['store_bytes']['media'] / 1e6:.1f} MB")
    for m in methods[1:]:
        print(f"{m}: {timings[m]['cpu_s_incl_cache']} CPU s, {timings[m]['wall_s']} s wall (cached hashes are reused)")
    print(f"rendering {render_s:.0f} s wall ({render_cpu:.0f} CPU s in this process's children); total {total_s:.0f} s")
    for note in notes + ours_timing["errors"]:
        print("note: " + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
