"""Job runners: what schedules the jobs of `monitor.jobs` (APScheduler in one process on the embedded database)."""
