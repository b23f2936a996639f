"""The re-upload edits now live in the package (`monitor.synth.transforms`), shared with `provenance calibrate`."""

from monitor.synth.transforms import *  # noqa: F401,F403
from monitor.synth.transforms import FONT, HAVE_FONT, Input, Recipe, RenderError, Step, render  # noqa: F401
