# The README's two commands. Both create .venv and install what they need on first use.
# Another Python: make test PYTHON=python3.10 VENV=.venv-3.10 (any of 3.10 to 3.13).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet --disable-pip-version-check

.PHONY: run test lint typecheck bench clean

# pgstress itself goes in editable, so the venv also has the `pgstress` console script.
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.txt
	$(PIP) --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(PIP) -r requirements-test.txt
	touch $@

# A short sync ramp (10k -> 100k epochs, step 10k, ndjson_zstd) on a throwaway embedded PostgreSQL.
# --memory-trace on: a tracemalloc peak on every row (auto's budget skips the last iterations' passes), for
# about 2.5x the CPU time of the ramp without them (29 s against 11 s measured).
run: $(VENV)/.installed
	env -u PG_DSN -u PGHOST -u PGHOSTADDR -u PGPORT -u PGDATABASE -u PGUSER -u PGPASSWORD -u PGSERVICE \
		$(PY) main.py --mode sync --payload-format ndjson_zstd \
		--start-epochs 10000 --end-epochs 100000 --step-epochs 10000 --memory-trace on \
		--drop-table --truncate-before-start

# ruff, mypy, then the suite against real PostgreSQL.
test: lint typecheck
	$(PY) -m pytest

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .

typecheck: $(VENV)/.installed-test
	$(PY) -m mypy

bench: $(VENV)/.installed
	$(PY) bench/run_bench.py

clean:
	rm -rf .venv .venv-* .pytest_cache .ruff_cache .mypy_cache pgstress.egg-info
