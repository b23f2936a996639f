"""Where the benchmarks find real footage: the chair set, by default the compact copy inside the repository.

`PROVENANCE_CHAIR_DIR` points at another copy (for example the full-size
originals of the ThreatExchange sample videos); nothing here reads a fixed
path outside the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IN_REPO_CHAIR = REPO / "tests" / "data" / "threatexchange-chair"


def chair_dir() -> Path:
    return Path(os.environ.get("PROVENANCE_CHAIR_DIR") or IN_REPO_CHAIR).expanduser()
