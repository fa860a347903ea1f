# banet-ops — the two commands of the README are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# Local state (PostGIS cluster, cube, products) stays inside the checkout unless set: the same
# rule as banet_ops.settings.default_home outside make, so both find the same state.
export BANET_HOME ?= $(CURDIR)/.banet
PYTEST_WORKERS ?= 2
REGION_FILES := $(wildcard banet_ops/data/regions/R_*.json)

.PHONY: help install demo demo-regions stack stack-stop test lint typecheck unit clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'

install:  ## system packages (PostGIS, as root) + .venv from requirements.lock; instant when done
	@scripts/install.sh

stack: install  ## start the local PostGIS (BANET_HOME/pg) and migrate it
	@$(BIN)/banet-ops stack start
	@$(BIN)/banet-ops db upgrade

stack-stop:  ## stop the local PostGIS
	@$(BIN)/banet-ops stack stop

demo: install  ## the end-to-end demo (`banet-ops demo` when available; else `make demo-regions`)
	@if $(BIN)/banet-ops demo --help >/dev/null 2>&1; then \
		$(BIN)/banet-ops demo; \
	else \
		$(MAKE) --no-print-directory demo-regions; \
	fi
	@echo "Map: \`make airflow\` -> http://127.0.0.1:8080/plugin/burned-areas (\"Burned areas\"); \`make serve\` -> http://127.0.0.1:8090/"

demo-regions: stack  ## local stack + migrations + the seven shared regions, listed from the DB
	@$(BIN)/banet-ops regions add $(REGION_FILES)
	@$(BIN)/banet-ops regions list

.PHONY: serve
serve: install  ## the map, OGC API Features/Tiles and STAC on http://127.0.0.1:8090 (`banet-ops serve`, read-only)
	@$(BIN)/banet-ops serve

.PHONY: airflow
airflow: install  ## local Airflow (api-server, scheduler, dag-processor, triggerer) on http://127.0.0.1:8080 over BANET_HOME/airflow; Ctrl-C/SIGTERM stops
	@$(BIN)/python -m banet_ops.localstack.airflow

lint: install  ## ruff
	$(BIN)/ruff check .

typecheck: install  ## mypy on banet_ops
	$(BIN)/mypy

unit: install  ## pytest only (PYTEST_ARGS=... to select)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q $(PYTEST_ARGS)

test: install  ## the whole suite: ruff, mypy, pytest (exit non-zero on any failure)
	@start=$$(date +%s); \
	$(BIN)/ruff check . && \
	$(BIN)/mypy && \
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q $(PYTEST_ARGS); \
	rc=$$?; echo "make test: exit $$rc after $$(( $$(date +%s) - start )) s"; exit $$rc

clean:  ## stop the local stack and remove local state and caches (not .venv)
	-@[ -x $(BIN)/banet-ops ] && $(BIN)/banet-ops stack stop
	rm -rf $(BANET_HOME) .mypy_cache .ruff_cache .pytest_cache
