PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps test-deps install demo test bench docs constraints

# ffmpeg/ffprobe and exiftool from Debian's packages, only when missing.
deps:
	@if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v exiftool >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq ffmpeg libimage-exiftool-perl; \
	fi

# The tests open the HTML report in headless Chromium (Debian's package), installed only when missing.
test-deps: deps
	@if ! command -v chromium >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	fi

# Everything at the versions in constraints.txt, except yt-dlp: always its newest release,
# since platforms break old ones (a yt-dlp change that breaks us shows up as a failing test).
install: deps
	$(PIP) install -q -c constraints.txt -e '.[test]'
	$(PIP) install -q --upgrade yt-dlp

# The main job, offline: a local fixture site is watched, polled and queried.
demo: install
	$(PYTHON) -m monitor.demo

# The test suite on SQLite and PostgreSQL (PROVENANCE_TEST_PG_URL, default 127.0.0.1:5432/test).
test: install test-deps
	$(PYTHON) -m pytest -n 2 -q

bench: install
	$(PYTHON) benchmarks/fingerprint_speed.py
	$(PYTHON) benchmarks/poll_throughput.py
	$(PYTHON) benchmarks/report_speed.py

docs:
	$(PYTHON) -m monitor.cli.docs > docs/cli.md

# After changing dependencies: pin what a working install holds (yt-dlp stays unpinned).
constraints:
	$(PYTHON) .ci/constraints.py > constraints.txt
