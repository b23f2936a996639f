"""What explaining the edits costs find-earliest: the colour frames cut and compared per report.

find-earliest now cuts a few matched frame pairs of each appearance in
colour (`monitor.jobs.edits`) to name edits the grey analysis cannot see.
This measures a find-earliest of the chair original against a store of the
six other chair files (trims, grey, sepia, two logos: six matches), with the
explanation and without it (`explain_appearances` replaced by a no-op) in the
same run, as CPU time (user + system of this process and its ffmpeg
children, from getrusage) and wall time, best of --repeat passes each.  The
analysis of the query is done once beforehand and passed in, so only the
lookup, the report's queries and the explanation are timed.

    python benchmarks/explain_speed.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHAIR = ROOT / "tests" / "data" / "threatexchange-chair"
CACHE = ROOT / "benchmarks" / ".cache" / "explain_speed"
STORED = ["chair-20-sd-bar.mp4", "chair-19-sd-bar.mp4", "chair-22-sd-grey-bar.mp4", "chair-22-sd-sepia-bar.mp4",
          "chair-22-with-small-logo-bar.mp4", "chair-22-with-large-logo-bar.mp4"]
QUERY = "chair-orig-22-sd-bar.mp4"


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    import monitor.jobs.earliest as earliest
    from monitor.analysis import analyse_file
    from monitor.config import load_config
    from monitor.jobs.ingest import ingest_file
    from monitor.workspace import Workspace
    from storage.records import NewPost

    shutil.rmtree(CACHE, ignore_errors=True)
    ws = Workspace.open(load_config(None, CACHE / "data", None))
    try:
        for n, name in enumerate(STORED):
            ingest_file(ws, CHAIR / name, NewPost(media_id=0, url=f"https://example.org/{n}"))
        analysed = analyse_file(CHAIR / QUERY, ws.settings, None, ws.exif, describe=False)
        explain = earliest.explain_appearances
        figures = {}
        for label, hook in (("without", lambda *a: None), ("with", explain)):
            earliest.explain_appearances = hook
            best_cpu = best_wall = float("inf")
            for _ in range(args.repeat):
                cpu, wall = _cpu(), time.perf_counter()
                report = earliest.find_earliest(ws, CHAIR / QUERY, analysed=analysed)
                best_cpu, best_wall = min(best_cpu, _cpu() - cpu), min(best_wall, time.perf_counter() - wall)
            figures[label] = (best_cpu, best_wall)
            explained = [a for a in report.appearances if a.edits is not None]
            print(f"{label} explanation: {len(report.appearances)} appearances, {len(explained)} explained; "
                  f"CPU {best_cpu * 1000:.0f} ms, wall {best_wall * 1000:.0f} ms (best of {args.repeat})")
        earliest.explain_appearances = explain
        for a in report.appearances:
            print(f"  {a.post.url}: {', '.join(a.edits.words()) if a.edits else '-'}")
        extra_cpu = figures["with"][0] - figures["without"][0]
        extra_wall = figures["with"][1] - figures["without"][1]
        ratio_cpu, ratio_wall = (figures["with"][k] / figures["without"][k] for k in (0, 1))
        print(f"extra for the explanation: CPU {extra_cpu * 1000:.0f} ms ({ratio_cpu:.2f}x), "
              f"wall {extra_wall * 1000:.0f} ms ({ratio_wall:.2f}x)")
    finally:
        ws.close()


if __name__ == "__main__":
    main()
