"""Where our matcher loses true pairs on a saved re-upload suite run (tuning seeds only, never seed 3).

    python benchmarks/reupload_suite.py --seed 1 --no-peers --keep-store /tmp/s1 --save-json s1.json
    python benchmarks/reupload_misses.py s1.json            # recall by footage kind, query/stored edit, overlap
    python benchmarks/reupload_misses.py s1.json --list     # ... and every missed (query, stored post) pair
    python benchmarks/reupload_misses.py s1.json --stages /tmp/s1 --queries 40
        # for missed pairs: the stage of the keypoint route that loses each one (stored keypoints, candidate
        # votes, RANSAC, the time line), from the kept store

The breakdown counts (query, true stored post) pairs as the suite's recall does.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from reupload.families import build_suite, shared_seconds  # noqa: E402


def _edit_names(edits: list[str]) -> set[str]:
    return {e.split("(")[0].split(" ")[0] for e in edits}


def breakdown(data: dict, suite, show: bool) -> list[tuple]:
    answers = {q: set(v) for q, v in data["answers"]["ours"].items()}
    totals: dict[tuple[str, str], Counter] = defaultdict(Counter)
    misses = []

    def bump(key: tuple[str, str], hit: bool) -> None:
        totals[key]["pairs"] += 1
        totals[key]["found"] += hit

    for q in suite.queries:
        if q.name not in answers:
            continue
        for s in suite.true_posts(q):
            hit = s.name in answers[q.name]
            bump(("footage", suite.families.get(s.family, "?")), hit)
            bump(("query role", q.role), hit)
            bump(("stored role", s.role), hit)
            for e in _edit_names(s.edits):
                bump(("stored edit", e), hit)
            for e in _edit_names(q.edits):
                bump(("query edit", e), hit)
            shared = shared_seconds(q, s)
            bump(("shared s", "<3" if shared < 3 else "3-6" if shared < 6 else "6-12" if shared < 12 else ">=12"), hit)
            if not hit:
                misses.append((q, s, round(shared, 1)))
    for key in sorted(totals):
        c = totals[key]
        print(f"{key[0]:12s} {key[1]:24s} {c['found']:4d}/{c['pairs']:<4d} {c['found'] / c['pairs']:.2f}")
    if show:
        for q, s, shared in misses:
            print(f"MISS {q.name} {q.edits} -> {s.name} {s.edits} ({suite.families.get(s.family)}, {shared} s shared)")
    return misses


def stages(data: dict, suite, misses: list[tuple], store: Path, queries: int) -> None:
    from fingerprints.keypoints import match as km
    from fingerprints.signals import media_signals
    from monitor.analysis import analyse_file
    from monitor.config import load_config
    from monitor.workspace import Workspace

    ws = Workspace.open(load_config(data_dir=store))
    kind = next(k for k in media_signals() if k.name == "keypoints")
    params = kind.match_params
    paths = {i["name"]: i["path"] for i in data["items"]}
    with sqlite3.connect(store / "provenance.db") as db:
        media_of = {url.rsplit("example.org/", 1)[-1]: m for url, m in db.execute("select url, media_id from posts")}

    def load(media_id: int):
        return kind.from_bytes(ws.repository.media_signal(media_id, ws.settings_id, kind.name, kind.version))

    index = ws.signal_indexes()["keypoints"].index
    by_query: dict[str, list] = defaultdict(list)
    for q, s, _ in misses:
        by_query[q.name].append(s)
    tally: Counter = Counter()
    for n, (name, stored) in enumerate(by_query.items()):
        if n >= queries:
            break
        analysed = analyse_file(Path(paths[name]), ws.settings, describe=False, query=True)
        value = analysed.fingerprint.signals["keypoints"]
        looked = [(view, index.query(view)) for view in (value, *value.views.values())]
        for s in stored:
            media_id = media_of[s.name]
            kept = load(media_id)
            votes = max((int(h.votes[h.media_ids == media_id].max()) if (h.media_ids == media_id).any() else 0)
                        for _, h in looked)
            pairs = [p for view, h in looked
                     for p in km.verify_candidates(view, h, load, params, [media_id]).get(media_id, [])]
            ranks = [km.rank_candidates(h, params, set()) for _, h in looked]
            rank = min((r.index(media_id) for r in ranks if media_id in r), default=None)
            stage = ("few stored keypoints" if kept.keypoint_count < 50 else "no candidate votes"
                     if votes < params.min_votes else "no pair survives RANSAC" if not pairs
                     else "not shortlisted" if rank >= params.shortlist * params.shortlist_rounds else "time line")
            tally[stage] += 1
            print(f"{stage:24s} {name} -> {s.name}: stored {kept.keypoint_count} keypoints in {len(kept)} keyframes, "
                  f"best votes {votes}, rank {rank}, verified pairs {len(pairs)}")
    print(dict(tally))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("saved", type=Path, help="a run saved with --save-json")
    parser.add_argument("--list", action="store_true", help="list every missed pair")
    parser.add_argument("--stages", type=Path, metavar="STORE", help="a store kept with --keep-store: diagnose misses")
    parser.add_argument("--queries", type=int, default=40, help="queries to diagnose with --stages (default 40)")
    args = parser.parse_args()
    data = json.loads(args.saved.read_text())
    if data["seed"] == 3:
        print("seed 3 is the result nobody tunes on: diagnose seeds 1-2", file=sys.stderr)
        return 2
    suite = build_suite(data["seed"], data.get("quick", False))
    misses = breakdown(data, suite, args.list)
    if args.stages:
        stages(data, suite, misses, args.stages, args.queries)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
