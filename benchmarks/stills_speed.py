"""How much cutting an evidence bundle's JPEG stills costs: many per ffmpeg process against one process per still.

`provenance export` cuts the matched moments of the query and of every stored
video as full-size JPEGs (`monitor.jobs.export.cut_stills`), up to
STILLS_PER_PROCESS seeked inputs per ffmpeg process.  The baseline runs the
same ffmpeg arguments once per still.  Both cut the same moments of the chair
footage; the JPEGs must come out byte-identical.  CPU time is user + system
of the reaped ffmpeg children (`getrusage`).

    python benchmarks/stills_speed.py --stills 12 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpora import chair_dir  # noqa: E402
from monitor.jobs.export import STILLS_PER_PROCESS, Still, cut_stills  # noqa: E402


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _duration(path: Path) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
                         capture_output=True, text=True, check=True).stdout
    return float(out.strip())


def plan(files: list[Path], per_file: int) -> list[Still]:
    stills = []
    for n, path in enumerate(files):
        duration = _duration(path)
        for k in range(per_file):
            at = duration * (k + 0.5) / per_file
            stills.append(Still(path, at, f"{n:02d}/{k:02d}-{at:09.3f}s.jpg", "stored", k, n))
    return stills


def one_per_process(stills: list[Still], root: Path) -> None:
    for still in stills:
        out = root / still.name
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-ss", f"{max(0.0, still.at):.3f}", "-i",
                        f"file:{still.source.resolve()}", "-map", "0:v:0", "-frames:v", "1", "-q:v", "2",
                        "-update", "1", f"file:{out}"], capture_output=True, check=False)


def measure(method, stills: list[Still], repeat: int) -> tuple[float, float, dict[str, bytes]]:
    best_cpu = best_wall = float("inf")
    outputs: dict[str, bytes] = {}
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            cpu, wall = _children_cpu(), time.perf_counter()
            method(stills, Path(tmp))
            best_cpu = min(best_cpu, _children_cpu() - cpu)
            best_wall = min(best_wall, time.perf_counter() - wall)
            outputs = {s.name: (Path(tmp) / s.name).read_bytes() for s in stills if (Path(tmp) / s.name).is_file()}
    return best_cpu, best_wall, outputs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stills", type=int, default=12, help="stills per file (default 12)")
    parser.add_argument("--repeat", type=int, default=3, help="passes; the best is reported (default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    files = sorted((chair_dir() / "videos").glob("*.mp4")) or sorted(chair_dir().glob("*.mp4"))
    if not files:
        sys.exit(f"no chair footage in {chair_dir()}; set PROVENANCE_CHAIR_DIR")
    stills = plan(files, args.stills)
    batched = measure(cut_stills, stills, args.repeat)
    single = measure(one_per_process, stills, args.repeat)
    rows = [{"method": f"cut_stills ({STILLS_PER_PROCESS} per process)", "cpu_s": batched[0], "wall_s": batched[1]},
            {"method": "one ffmpeg per still", "cpu_s": single[0], "wall_s": single[1]}]
    result = {"files": len(files), "stills": len(stills), "load_average": os.getloadavg()[0], "rows": rows,
              "identical_jpegs": batched[2] == single[2] and len(batched[2]) == len(stills),
              "cpu_ratio": single[0] / batched[0] if batched[0] else None}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{len(stills)} stills from {len(files)} files (load average {result['load_average']:.1f}); "
          f"identical JPEGs: {result['identical_jpegs']}")
    print("| method | CPU s | wall s | stills per CPU s |\n|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['method']} | {row['cpu_s']:.2f} | {row['wall_s']:.2f} | {len(stills) / row['cpu_s']:.1f} |")
    print(f"one process per still costs {result['cpu_ratio']:.2f}x the CPU of cut_stills")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
