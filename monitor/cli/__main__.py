"""`python -m monitor.cli`: the `provenance` command without the fast path."""

from monitor.cli.main import main

main()
