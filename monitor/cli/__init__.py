"""The `provenance` command line (see `monitor.cli.main`, which assembles the commands).

Kept empty so that the console script's entry point, `monitor.cli.fastpath`,
starts without importing click, the jobs or the database code.
"""
