"""Speed estimates of retimed copies: how often the reported speed is within 5% of the true one.

Re-uploads are sped up or slowed down, often cut short and re-timed to
another frame rate too.  Each item here is a copy of a stored video with a
speed drawn at random from 0.5-0.95 or 1.05-2.0, an excerpt of 3-10 s (of
the copy) from a random start, and sometimes a frame-rate change (12, 24 or
30 fps); `--real-time` draws copies that are not retimed (grey, crop,
mirror, half size, contrast, nothing) to count speeds reported where there
is none.  The stored videos are three generated 16 s clips and the chair
footage (real phone video).

The baseline is another checkout of the project (`--compare DIR`, e.g. a
worktree of main), run on the same items in a subprocess, so both figures
come from one run.  Copies are cached under benchmarks/.cache/speed_estimate.

    python benchmarks/speed_estimate.py --seed 3 --items 24 [--real-time] [--compare /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "speed_estimate"
CHAIR = ROOT / "tests" / "data" / "threatexchange-chair" / "chair-orig-22-sd-bar.mp4"
TOLERANCE = 0.05
REAL_TIME_EDITS = ("hue=s=0", "crop=iw*0.8:ih*0.8", "hflip", "scale=iw/2:-2", "eq=contrast=1.3", "null")


def items(seed: int, count: int, real_time: bool) -> list[dict]:
    """The copies to make, drawn from `seed`: source, speed, start, length, filter."""
    from monitor.synth.samples import make_edit, make_source_clip

    CACHE.mkdir(parents=True, exist_ok=True)
    sources = {}
    for k, order in ((1, (0, 1, 2, 3)), (2, (3, 2, 1, 0)), (3, (1, 3, 0, 2))):
        path = CACHE / f"source-{k}.mp4"
        if not path.exists():
            make_source_clip(path, seed=k, duration=16.0, scene_order=order)
        sources[k] = (path, 16.0)
    sources[4] = (CHAIR, 22.4)
    rng = random.Random(seed)
    out = []
    for i in range(count):
        k = rng.choice(sorted(sources))
        path, duration = sources[k]
        speed = 1.0 if real_time else round(rng.choice([rng.uniform(0.5, 0.95), rng.uniform(1.05, 2.0)]), 3)
        length = rng.uniform(3, 10)
        start = rng.uniform(0, max(0.0, duration - length * speed - 0.5))
        rate = rng.choice([None, 12, 24, 30])
        edit = rng.choice(REAL_TIME_EDITS) if real_time else f"setpts=PTS/{speed}"
        graph = edit + (f",fps={rate}" if rate else "")
        dst = CACHE / f"{'rt' if real_time else 'sp'}-{seed}-{i}.mp4"
        if not dst.exists():
            make_edit(path, dst, graph, start, length)
        out.append({"source": k, "source_path": str(path), "copy": str(dst), "speed": speed, "start": round(start, 2),
                    "length": round(length, 2), "graph": graph})
    return out


def measure(plan: list[dict]) -> list[float | None]:
    """The speed this checkout reports for each copy against its source (None: not matched)."""
    from fingerprints.align import match_fingerprint
    from fingerprints.index import BruteForceIndex
    from fingerprints.model import FingerprintSettings
    from fingerprints.signals import index_fingerprints
    from fingerprints.video import fingerprint_video

    settings = FingerprintSettings()
    paths = sorted({(p["source"], p["source_path"]) for p in plan})
    stored = {k: fingerprint_video(Path(path), settings) for k, path in paths}
    indexes = index_fingerprints(stored, BruteForceIndex)
    durations = {k: fp.duration for k, fp in stored.items()}
    speeds = []
    for p in plan:
        matches = match_fingerprint(fingerprint_video(Path(p["copy"]), settings), indexes, durations)
        hit = next((m for m in matches if m.media_id == p["source"]), None)
        speeds.append(None if hit is None else hit.speed)
    return speeds


def right(plan: list[dict], speeds: list[float | None]) -> tuple[int, int]:
    """(copies matched with the speed within TOLERANCE, copies matched)."""
    found = [(p["speed"], s) for p, s in zip(plan, speeds) if s is not None]
    return sum(abs(s / t - 1) <= TOLERANCE for t, s in found), len(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--real-time", action="store_true", help="copies that are not retimed")
    parser.add_argument("--compare", type=Path, help="another checkout to measure on the same items (the baseline)")
    parser.add_argument("--measure-only", type=Path, help=argparse.SUPPRESS)  # a plan file: print speeds as JSON
    args = parser.parse_args()
    if args.measure_only:
        print(json.dumps(measure(json.loads(args.measure_only.read_text()))))
        return
    plan = items(args.seed, args.items, args.real_time)
    ours = measure(plan)
    baseline = None
    if args.compare:
        plan_file = CACHE / f"plan-{os.getpid()}.json"
        plan_file.write_text(json.dumps(plan))
        try:
            env = {**os.environ, "PYTHONPATH": str(args.compare.resolve())}
            done = subprocess.run([sys.executable, __file__, "--measure-only", str(plan_file)], env=env,
                                  capture_output=True, text=True, check=True, cwd=args.compare)
            baseline = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            plan_file.unlink(missing_ok=True)
    for k, p in enumerate(plan):
        other = "" if baseline is None else f"  baseline {baseline[k]}"
        print(f"{k:2d} source {p['source']} true {p['speed']:.3f} {p['length']:4.1f} s from {p['start']:4.1f} s "
              f"{p['graph']:<28} ours {ours[k]}{other}")
    good, found = right(plan, ours)
    line = f"ours: speed within {TOLERANCE:.0%} for {good}/{found} matched copies ({len(plan)} copies)"
    if baseline is not None:
        b_good, b_found = right(plan, baseline)
        line += (f"; baseline: {b_good}/{b_found}; ratio {good / found:.2f} / {b_good / b_found:.2f} = "
                 f"{(good / found) / (b_good / b_found):.2f}x" if found and b_found and b_good else "")
    print(line)


if __name__ == "__main__":
    main()
