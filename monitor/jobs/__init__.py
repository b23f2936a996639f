"""The jobs: plain functions over a `monitor.workspace.Workspace`, called by the CLI, the daemon and tests alike."""
