PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps install demo test bench docs

# ffmpeg/ffprobe and exiftool from Debian's packages, only when missing.
deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v exiftool >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg libimage-exiftool-perl; \
	fi

install: deps
	$(PIP) install -q -e '.[test]'

# The main job, offline: a local fixture site is watched, polled and queried.
demo: install
	$(PYTHON) -m monitor.demo

# The test suite on SQLite and PostgreSQL (PROVENANCE_TEST_PG_URL, default 127.0.0.1:5432/test).
test: install
	$(PYTHON) -m pytest -n 2 -q

bench: install
	$(PYTHON) benchmarks/fingerprint_speed.py
	$(PYTHON) benchmarks/poll_throughput.py

docs:
	$(PYTHON) -m monitor.cli.docs > docs/cli.md
