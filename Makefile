# The two set-up commands (see README.md):
#   make run    build everything and run the demo clinic on http://127.0.0.1:5000
#   make test   install what the tests need and run the whole suite on SQLite and PostgreSQL
# Both are safe to run again: each step checks before it acts.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
WORKERS ?= 2
POSTGRES_URL ?= $(or $(OUTCOME_TEST_POSTGRES_URL),postgresql+psycopg://postgres@127.0.0.1:5432/test)
PYTEST_ARGS ?=

.PHONY: run test test-sqlite test-postgresql lint typecheck audit fuzz crash bench install install-test browser-tools postgres-ready clean

run: install
	$(BIN)/outcome config init
	$(BIN)/outcome db upgrade
	$(BIN)/outcome demo --if-empty
	@# The scheduler runs beside the web server; Ctrl-C stops both.
	@trap 'kill 0' EXIT INT TERM; \
	  $(BIN)/outcome scheduler & \
	  $(BIN)/outcome serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: install-test browser-tools lint typecheck audit test-sqlite test-postgresql

lint: install-test
	$(BIN)/ruff check .

# mypy over outcome, questionnaires and reports ([tool.mypy] in pyproject.toml: strict for
# outcome.core and questionnaires, default settings elsewhere); must report no error.
typecheck: install-test
	$(BIN)/mypy

# bandit (no medium or high finding) and pip-audit (no known vulnerability).
audit: install-test
	$(BIN)/python .ci/dependency_audit.py

test-sqlite: install-test browser-tools
	$(BIN)/python -m pytest --db=sqlite $(PYTEST_ARGS)

test-postgresql: install-test browser-tools postgres-ready
	$(BIN)/python -m pytest --db=postgresql --postgres-url='$(POSTGRES_URL)' $(PYTEST_ARGS)

# Benchmarks report ratios measured in one run (these 2-core machines are noisy).
bench: install
	$(BIN)/python -m bench.scoring
	$(BIN)/python -m bench.signals
	$(BIN)/python -m bench.forms
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.digest
	$(BIN)/python -m bench.clinic_day

# Crash safety: 200 SIGKILLs of `outcome serve` (worker or master) under API load, on each
# backend; exits non-zero if a submission is lost, duplicated or half-written. PostgreSQL
# needs psycopg and a running server, hence postgres-ready.
crash: install postgres-ready
	$(BIN)/python -m bench.crash --kills 200 --db sqlite
	$(BIN)/python -m bench.crash --kills 200 --db postgresql --postgres-url '$(POSTGRES_URL)'

postgres-ready: install-test
	$(BIN)/python tests/ensure_postgres.py '$(POSTGRES_URL)'

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Browser tests drive Debian's Chromium (Playwright's own browser download is not used)
# and inject axe-core from npm; report tests render PDF pages to PNG with poppler; the
# API guide's walk-through runs with curl and jq.
browser-tools: node_modules/.installed
	@command -v chromium >/dev/null && command -v zbarimg >/dev/null \
	  && command -v pdftoppm >/dev/null && command -v curl >/dev/null \
	  && command -v jq >/dev/null && command -v pg_dump >/dev/null || { \
	  echo "Installing Chromium, zbar (QR decoding), poppler (PDF pages), curl, jq and postgresql-client with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium zbar-tools poppler-utils curl jq postgresql-client; }

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --silent
	@touch $@

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "outcome needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { \
	  echo "Installing python3-venv with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis test-artifacts node_modules

# Longer fuzzing than CI's 100,000 inputs per target: ten minutes each (FUZZ_SECONDS).
FUZZ_SECONDS ?= 600
fuzz: install-test
	@for target in answers csv definitions fhir; do \
	  echo "== $$target ($(FUZZ_SECONDS) s)"; \
	  $(BIN)/python tests/fuzz/harness.py $$target -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -artifact_prefix=test-artifacts/fuzz-$$target- 2>&1 | grep -E "^Done|crash|Error" ; \
	done
