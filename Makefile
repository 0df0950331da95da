# The two set-up commands (see README.md):
#   make run    build everything and run the demo clinic on http://127.0.0.1:5000
#   make test   install what the tests need and run the whole suite on SQLite and PostgreSQL
#               (both runs side by side, each on TEST_WORKERS pytest-xdist workers)
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
# pytest-xdist workers per backend run; `make test` runs the two backends side by side.
# Many tests wait on servers, subprocesses and the database, so more processes than cores
# keep the cores busy.
TEST_WORKERS ?= 2
# A module's tests stay on one worker: module-scoped fixtures (a browser, the access
# matrix's world, the backup source) are built once.
XDIST = -n $(TEST_WORKERS) --dist loadfile
TEST_LOGS := test-artifacts/logs
# pytest caches its assertion-rewritten modules as bytecode; with PYTHONDONTWRITEBYTECODE
# set (as on these machines) every run and every xdist worker rewrites again the whole of
# schemathesis and hypothesis (plugins' packages are rewritten too): ~8 s CPU a process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test test-sqlite test-postgresql lint typecheck audit advisories lock fuzz crash bench bench-ruptures bench-encryption scale install install-test browser-tools postgres-ready clean

run: install
	$(BIN)/outcome config init
	$(BIN)/outcome db upgrade
	$(BIN)/outcome demo --if-empty
# The scheduler runs beside the web server; Ctrl-C stops both.
	@trap 'kill 0' EXIT INT TERM; \
	  $(BIN)/outcome scheduler & \
	  $(BIN)/outcome serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

# ruff first (seconds, fails fast); then the audit and both backends' runs side by side.
# Each run writes its output to $(TEST_LOGS)/<run>.log, printed whole when all are done,
# then the closing lines of each pytest run (`N passed ...`). Any failure fails the make,
# pytest's exit code 5 ("no tests collected") included.
test: install-test browser-tools postgres-ready lint typecheck
	@mkdir -p $(TEST_LOGS)
	@rm -f $(TEST_LOGS)/*.log
	@echo "make test: audit, pytest --db=sqlite and pytest --db=postgresql side by side" \
	  "($(TEST_WORKERS) workers each); logs in $(TEST_LOGS)/"
	@status=0; \
	  $(BIN)/python .ci/dependency_audit.py > $(TEST_LOGS)/audit.log 2>&1 & audit=$$!; \
	  $(BIN)/python -m pytest --db=sqlite $(XDIST) $(PYTEST_ARGS) \
	    > $(TEST_LOGS)/sqlite.log 2>&1 & sqlite=$$!; \
	  $(BIN)/python -m pytest --db=postgresql --postgres-url='$(POSTGRES_URL)' \
	    $(XDIST) $(PYTEST_ARGS) > $(TEST_LOGS)/postgresql.log 2>&1 & postgresql=$$!; \
	  for run in audit sqlite postgresql; do \
	    code=0; wait $${!run} || code=$$?; \
	    echo "== $$run: exit $$code" >> $(TEST_LOGS)/summary.log; \
	    if [ $$code -ne 0 ]; then status=1; fi; \
	  done; \
	  for run in audit sqlite postgresql; do \
	    echo; echo "=============== $$run ($(TEST_LOGS)/$$run.log) ==============="; \
	    cat $(TEST_LOGS)/$$run.log; \
	  done; \
	  echo; echo "=============== make test summary ==============="; \
	  cat $(TEST_LOGS)/summary.log; \
	  for run in sqlite postgresql; do tail -n 1 $(TEST_LOGS)/$$run.log; done; \
	  exit $$status

lint: install-test
	$(BIN)/ruff check .

# mypy over outcome, questionnaires and reports ([tool.mypy] in pyproject.toml: strict for
# outcome.core and questionnaires, default settings elsewhere); must report no error.
typecheck: install-test
	$(BIN)/mypy

# bandit (no medium or high finding), and every locked package against the advisory
# snapshot in .ci/advisories/ (offline; no known vulnerability outside the exceptions
# listed in docs/reliability.md).
audit: install-test
	$(BIN)/python .ci/dependency_audit.py

# One backend at a time (e.g. `make test-sqlite PYTEST_ARGS='-m "not slow and not browser"'`).
test-sqlite: install-test browser-tools
	$(BIN)/python -m pytest --db=sqlite $(XDIST) $(PYTEST_ARGS)

test-postgresql: install-test browser-tools postgres-ready
	$(BIN)/python -m pytest --db=postgresql --postgres-url='$(POSTGRES_URL)' \
	  $(XDIST) $(PYTEST_ARGS)

# Benchmarks report ratios measured in one run (these 2-core machines are noisy).
bench: install postgres-ready
	$(BIN)/python -m bench.scoring
	$(BIN)/python -m bench.signals
	$(BIN)/python -m bench.forms
	$(BIN)/python -m bench.forms --db postgresql --postgres-url '$(POSTGRES_URL)'
	$(BIN)/python -m bench.dashboard
	$(BIN)/python -m bench.dashboard --large 0 --postgres '$(POSTGRES_URL)'
	$(BIN)/python -m bench.digest
	$(BIN)/python -m bench.briefs
# The clinic day (issue 21): think model at 50 and 200 users and the stress model, on
# SQLite and PostgreSQL, the digest run during each: about 25 minutes on 2 quiet cores.
	$(BIN)/python -m bench.clinic_day --db sqlite postgresql --postgres-url '$(POSTGRES_URL)'
	$(BIN)/python -m bench.ruptures
	$(BIN)/python -m bench.audit_flood
	$(BIN)/python -m bench.slow_clients
	$(BIN)/python -m bench.cli

# The cost of encryption at rest (issue 20): the form, caseload and digest benchmarks with
# and without a key, in one run, as ratios on/off (docs/reliability.md). About 15 minutes.
bench-encryption: install
	$(BIN)/python -m bench.encryption --quick

# Alliance rupture rules on simulated noisy series, before and after issue 15 (seconds).
bench-ruptures: install
	$(BIN)/python -m bench.ruptures

# Scale-out (issue 21): two `outcome serve` hosts (127.0.0.2 and 127.0.0.3) behind HAProxy,
# one fresh PostgreSQL database and Redis (database 5) shared, two schedulers; a host is
# killed under load. Exits non-zero if a check fails (shared rate limits, a session on
# either host, no submission lost or duplicated, one digest a supervisor and week); prints
# requests/s with both hosts and with one, and per core. About 2 minutes.
scale: install browser-tools postgres-ready
	$(BIN)/python -m bench.scale --postgres-url '$(POSTGRES_URL)'

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
# API guide's walk-through runs with curl and jq; the reverse proxy test runs nginx (with
# a test certificate from openssl) in front of outcome serve; the scale-out test (issue 21)
# balances two hosts with HAProxy.
browser-tools: node_modules/.installed
	@command -v chromium >/dev/null && command -v zbarimg >/dev/null \
	  && command -v pdftoppm >/dev/null && command -v curl >/dev/null \
	  && command -v jq >/dev/null && command -v pg_dump >/dev/null \
	  && { command -v nginx || test -x /usr/sbin/nginx; } >/dev/null \
	  && { command -v haproxy || test -x /usr/sbin/haproxy; } >/dev/null \
	  && command -v openssl >/dev/null || { \
	  echo "Installing Chromium, zbar (QR decoding), poppler (PDF pages), curl, jq, postgresql-client, nginx, haproxy and openssl with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium zbar-tools poppler-utils curl jq postgresql-client nginx haproxy openssl; }

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

# Installs come from the lock files in requirements/ (every package pinned, with hashes):
# run.txt for `make run` and servers (with the postgres and redis extras), test.txt (the
# same versions plus the test extra) for `make test`. pip
# bootstraps uv (itself locked, requirements/uv.txt); uv then makes the virtualenv exactly
# the lock (`pip sync`: adds, upgrades and removes) and installs outcome itself editable,
# built with the locked setuptools. Each step re-runs when its lock changes.
$(BIN)/uv: requirements/uv.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/uv.txt
	@touch $@

UV_PIP = $(BIN)/uv pip --quiet
UV_PYTHON = --python $(BIN)/python
INSTALL_OUTCOME = $(UV_PIP) install $(UV_PYTHON) --no-deps --no-build-isolation -e .

$(VENV)/.installed: requirements/run.txt pyproject.toml | $(BIN)/uv
	$(UV_PIP) sync $(UV_PYTHON) --require-hashes requirements/run.txt
	$(INSTALL_OUTCOME)
	@touch $@

$(VENV)/.installed-test: requirements/test.txt pyproject.toml | $(BIN)/uv
	$(UV_PIP) sync $(UV_PYTHON) --require-hashes requirements/test.txt
	$(INSTALL_OUTCOME)
	@touch $@ $(VENV)/.installed

# Re-resolve the lock files after changing the dependencies in pyproject.toml or
# requirements/*.in (`make lock UPGRADE=1` moves every package to its newest allowed
# version), then refresh the advisory snapshot. One resolution for Python 3.11 and newer
# on every platform; run.txt and uv.txt take their versions from test.txt.
UPGRADE ?=
LOCK = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
  $(if $(UPGRADE),--upgrade)
lock: | $(BIN)/uv
	$(LOCK) --extra test pyproject.toml requirements/venv.in -o requirements/test.txt
	$(LOCK) -c requirements/test.txt --extra postgres --extra redis pyproject.toml \
	  requirements/venv.in -o requirements/run.txt
	$(LOCK) -c requirements/test.txt requirements/uv.in -o requirements/uv.txt
	@echo "Locked. Now run \`make advisories\` and commit requirements/ and .ci/advisories/."

# The vulnerability data the audit reads offline (.ci/advisories/): the PyPA advisory
# database's records for every locked package, or PyPI's where GitHub is unreachable.
# The one step of the audit that needs the network; commit the result.
advisories: install-test
	$(BIN)/python .ci/refresh_advisories.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis test-artifacts node_modules

# Longer fuzzing than the suite's (100,000 inputs or 5 s per target): ten minutes each
# (FUZZ_SECONDS).
FUZZ_SECONDS ?= 600
fuzz: install-test
	@for target in answers csv definitions fhir inputs; do \
	  echo "== $$target ($(FUZZ_SECONDS) s)"; \
	  $(BIN)/python tests/fuzz/harness.py $$target -max_total_time=$(FUZZ_SECONDS) \
	    -max_len=4096 -artifact_prefix=test-artifacts/fuzz-$$target- 2>&1 | grep -E "^Done|crash|Error" ; \
	done
