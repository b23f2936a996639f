"""Local features (ORB keypoints of keyframes): a route to matches that global hashes miss.

Rotations with zoom, stretches, off-centre crops, screen recordings and
picture-in-picture change a frame's global hash beyond recognition but keep
most of its small patches.  `features` picks keyframes and stores their
keypoints, `index` finds candidate keyframes by descriptor, `match` verifies
them geometrically and in time, and `signal` registers it all as the
`"keypoints"` `MediaSignal` kind.
"""

from .features import KeypointCollector, KeypointParams, Keyframes
from .index import BruteForceKeypointIndex, KeyframeHits, LshKeypointIndex
from .match import KeypointMatchParams
from .signal import KeypointSignal

__all__ = ["BruteForceKeypointIndex", "KeyframeHits", "KeypointCollector", "KeypointMatchParams", "KeypointParams",
           "KeypointSignal", "Keyframes", "LshKeypointIndex"]
