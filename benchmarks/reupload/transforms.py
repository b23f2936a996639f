"""The re-upload edits now live in the package (`monitor.transforms`), shared with `provenance calibrate`."""

from monitor.transforms import *  # noqa: F401,F403
from monitor.transforms import FONT, HAVE_FONT, Input, Recipe, RenderError, Step, render  # noqa: F401
