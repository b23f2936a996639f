"""Synthetic footage and re-upload edits rendered with ffmpeg: for `provenance calibrate`, the demo, tests and benchmarks."""
