"""Monitoring commands: watch, run-once, daemon (registered on the `provenance` group)."""
