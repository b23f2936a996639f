"""The investigator's workspace in a browser: `provenance web` (see `monitor.web.app`)."""
