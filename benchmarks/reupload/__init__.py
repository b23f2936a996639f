"""Helpers for `benchmarks/reupload_suite.py`: corpus, ffmpeg transforms, peer methods, scoring."""
