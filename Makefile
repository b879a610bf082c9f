# The two newcomer commands live here: `make test` and `make up`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PY_PATHS := operator platform tests $(wildcard bench)

.PHONY: test setup up lint typecheck unit bench-operator bench-messaging bench-files clean

setup:
	./scripts/bootstrap.sh

# One tenant's whole platform on this machine (SQLite, local files, embedded broker): prints URL and login.
# Only the Python venv is needed; SOA_APT_PACKAGES= skips the test servers' Debian packages.
up:
	SOA_APT_PACKAGES= SOA_WITH_CHECKOV=0 ./scripts/bootstrap.sh
	$(VENV)/bin/soa up $(UP_ARGS)

lint: setup
	$(VENV)/bin/ruff check $(PY_PATHS)
	$(VENV)/bin/ruff format --check $(PY_PATHS)
	$(VENV)/bin/lint-imports

typecheck: setup
	$(VENV)/bin/mypy --strict -p soa_operator -p soa_platform

unit: setup
	$(PY) -m pytest -m "not slow and not cluster" $(PYTEST_ARGS)

# Everything CI runs, from a fresh machine: install, lint, type-check, test.
test: setup lint typecheck unit

bench-operator: setup
	$(PY) bench/operator_scale.py --tenants 50,200,1000 --deadline-per-tenant 0.5

bench-messaging: setup
	$(PY) bench/messaging_load.py

# Presigned uploads and downloads through the platform vs raw S3 on the JuiceFS gateway (docs/performance.md).
bench-files: setup
	$(PY) bench/files_throughput.py

clean:
	rm -rf $(VENV) .venv-checkov .mypy_cache .ruff_cache .pytest_cache
