# billwarden: `make demo` runs it offline, `make test` installs what it needs and runs every check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SOURCES := $(wildcard src tests bench)

.PHONY: install demo test fuzz lint format bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/billwarden demo

lint: install
	$(VENV)/bin/ruff check $(SOURCES)
	$(VENV)/bin/ruff format --check $(SOURCES)
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

format: install
	$(VENV)/bin/ruff check --fix $(SOURCES)
	$(VENV)/bin/ruff format $(SOURCES)

# Every test that reaches a database runs twice: once on SQLite, once on a PostgreSQL database
# created for the run (a test that reaches none runs once).
# lint also checks the import contracts in .importlinter (the layers; see docs/architecture.md).
test: lint
	$(VENV)/bin/pytest

# The fuzz stage of `make test` (tests/fuzz: schemathesis over the OpenAPI document, on both
# databases) with many more generated requests per operation, drawn anew each run:
# BILLWARDEN_FUZZ_SEED=<the seed a failure printed> draws the same ones again.
FUZZ_EXAMPLES ?= 200
fuzz: install
	BILLWARDEN_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest tests/fuzz -s -p no:cacheprovider

bench: install
	$(PY) bench/emulator.py
	$(PY) bench/webhooks.py
	$(PY) bench/entitlements.py
	$(PY) bench/stats.py
	$(PY) bench/reconcile.py
	$(PY) bench/usage.py
	$(PY) bench/load.py
	$(PY) bench/chaos.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
