"""Named failpoints: a testing aid that kills this process (SIGKILL) at a chosen step.

The fault suite (tests/monitor/test_faults.py) proves that a process killed
at any step of an ingest leaves nothing half-stored once the next process has
started.  It sets `PROVENANCE_FAILPOINT=<name>` (several: comma-separated) for
one subprocess; `failpoint("<name>")` then kills that process with SIGKILL,
exactly as `kill -9` would, the first time the step is reached.  Without the
variable (always, in real use) a failpoint costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "PROVENANCE_FAILPOINT"

# The steps with a failpoint, in the order an item goes through them.
ITEM_STEPS = (
    "item-workdir",  # the item's work directory exists, nothing downloaded
    "after-download",  # the file is in the work directory
    "after-analyse",  # metadata and fingerprint computed, nothing stored
    "store-copying",  # a `.incoming-*.part` file is being written in the media store
    "after-store-put",  # the file is in the media store, no row names it
    "before-commit",  # media, fingerprint, matches and post written, not committed
    "after-commit",  # the post is stored, the item's poll state is not
    "after-item-recorded",  # everything recorded, the work directory not yet removed
)
POLL_STEPS = ("poll-started",)  # the poll row says "running", nothing listed


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL if `name` is among the failpoints in PROVENANCE_FAILPOINT."""
    chosen = os.environ.get(ENV)
    if chosen and name in chosen.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
