# driftgate: the one command surface. CI runs `make test`, exactly as people do.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
KAFKA_LIBS ?= build/kafka/libs

.DEFAULT_GOAL := help
.PHONY: help install run test unit test-kernels lint format typecheck kafka-jars system-deps clean test-faults bench-detect bench-windows

help: ## Show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv and install driftgate with its dev tools

run: install ## Run the embedded demo (no Kafka needed)
	$(VENV)/bin/driftgate demo

kafka-jars: ## Fetch Apache Kafka jars from Maven Central (cached) for the test broker
	bash tests/kafka/fetch.sh $(KAFKA_LIBS)

system-deps: ## Install Debian packages the integration tests use (prometheus-alertmanager, postgresql)
	bash deploy/scripts/install-alertmanager.sh
	bash deploy/scripts/install-postgresql.sh

lint: install ## ruff lint + format check
	$(VENV)/bin/ruff check monitor detectors tests bench
	$(VENV)/bin/ruff format --check monitor detectors tests bench

format: install ## Apply ruff formatting and safe fixes
	$(VENV)/bin/ruff check --fix monitor detectors tests bench
	$(VENV)/bin/ruff format monitor detectors tests bench

typecheck: install ## mypy --strict on monitor/, detectors/ and bench/
	$(VENV)/bin/mypy

unit: install ## Fast tests only (no Kafka, no Alertmanager, no PostgreSQL)
	$(PY) -m pytest -m "not kafka and not alertmanager and not postgres"

# OpenBLAS kernel families to force in test-kernels (each must run on this CPU: Prescott
# needs SSE3, Sandybridge AVX, Haswell AVX2, SkylakeX AVX-512)
OPENBLAS_KERNELS ?= Haswell Sandybridge

test-kernels: install ## The fast tier again with each OpenBLAS kernel in OPENBLAS_KERNELS forced: no test may depend on the CPU
	@for k in $(OPENBLAS_KERNELS); do \
	  echo "== OPENBLAS_CORETYPE=$$k"; \
	  OPENBLAS_CORETYPE=$$k $(PY) -m pytest -q -p no:cacheprovider -m "not kafka and not alertmanager and not postgres" || exit 1; \
	done

test: install kafka-jars system-deps lint typecheck ## Everything: lint, types, unit, doctests, real-Kafka, real-Alertmanager and real-PostgreSQL tests
	$(PY) -m pytest

test-faults: install kafka-jars system-deps ## The full fleet fault matrix: members killed at every crash point, broker restart (real Kafka + PostgreSQL)
	$(PY) -m pytest -m faults tests/integration/test_fleet_matrix.py

bench-detect: install ## Detection benchmark → docs/benchmarks/detection.md
	$(PY) -m bench.detection --out docs/benchmarks

bench-windows: install ## ARL0 of the roll-ups' window CUSUM → docs/benchmarks/windows.md
	$(PY) -m bench.windows --out docs/benchmarks

clean: ## Remove the venv, caches and build output
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache *.egg-info
