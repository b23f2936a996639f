PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install demo test bench

install:
	$(PIP) install -q -e '.[test]'

# The main job, offline: a local fixture site is watched, polled and queried.
demo: install
	$(PYTHON) -m monitor.demo

# The test suite on SQLite and PostgreSQL (PROVENANCE_TEST_PG_URL, default 127.0.0.1:5432/test).
test: install
	$(PYTHON) -m pytest -n 2 -q

bench: install
	$(PYTHON) benchmarks/fingerprint_speed.py
