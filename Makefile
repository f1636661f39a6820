# One entry point for people and CI. Every target bootstraps .venv from uv.lock: exactly the
# packages and versions locked there, checked against their hashes (docs/development.md
# "Installing").
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# uv's version is locked with the rest (pyproject's dev extra); pip installs that one first
UV_VERSION := $(shell sed -n 's/.*"uv==\([0-9.]*\)".*/\1/p' pyproject.toml)
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help venv test check lint typecheck demo dev sim bench report clean lock
.DEFAULT_GOAL := help

help:  ## this list: every target, one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-z]+:.*## / {printf "  make %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --compile-bytecode: every package's .pyc written once, at install. Without them each Python
# process (every Dagster run, daemon and CLI command) compiles what it imports again wherever
# PYTHONDONTWRITEBYTECODE is set, as on CI's machines: 2.3 s of CPU per `dagster` command.
$(STAMP): pyproject.toml uv.lock
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv sync --frozen --extra dev --quiet --compile-bytecode
	touch $(STAMP)

venv: $(STAMP)  ## .venv from uv.lock (every other target does this first)

# after changing pyproject.toml's dependencies: resolve them into uv.lock (what changed only;
# `make lock UPGRADE=1` moves every package to its newest allowed release)
lock: $(STAMP)  ## after changing pyproject.toml's dependencies: resolve them into uv.lock
	$(BIN)/uv lock $(if $(UPGRADE),--upgrade)

lint: $(STAMP)  ## ruff (format and rules), import contracts, uv.lock in step
	$(BIN)/uv lock --check  # pyproject.toml and uv.lock agree
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)  ## mypy
	$(BIN)/mypy

# The suite's tests wait on the simulator, child processes and PostgreSQL more than they compute, so
# more workers than the 2 cores pay (docs/development.md "Tests" has the figures). tests/conftest.py
# orders them heaviest first, and xdist hands them out in that order a test or two at a time
# (--maxschedchunk 1: its default gives each worker a quarter of its share up front, so all the
# heavy tests went to the first). Every run prints its 15 slowest tests.
WORKERS ?= 4
PYTEST := $(BIN)/pytest -n $(WORKERS) --dist load --maxschedchunk 1 --durations=15

# everything: lint, types, the definitions as `dg` loads them, every test in both lanes
test: lint typecheck  ## everything CI runs: lint, types, dg check defs, every test (both lanes)
	$(BIN)/dg check defs  # the definitions load as `dg` loads them (pyproject [tool.dg])
	$(PYTEST)

# the inner loop, after each change: lint, types, and the unit, integration and in-process
# Dagster tests on the DuckDB file (no Dagster process, no DuckLake, no 100k-call volume)
check: lint typecheck  ## the inner loop (2 min): lint, types, the fast tests on the DuckDB file
	$(PYTEST) -m "not process and not lake and not slow"

# DAGSTER_HOME when set, else var/dagster/ with a link to dagster.yaml (pipelines/demo.py)
demo: $(STAMP)  ## a simulated jambonz, 7 days synced into var/demo.duckdb, a report
	$(BIN)/python -m pipelines.demo

dev: $(STAMP)  ## the Dagster UI (dg dev) on the simulator; PORT=3000 by default
	$(BIN)/python -m pipelines.demo --ui $(if $(PORT),--port $(PORT))

sim: $(STAMP)  ## the jambonz simulator alone, on http://127.0.0.1:8765
	$(BIN)/python -m pipelines.jambonz.simulator --port 8765

# FROM=YYYY-MM-DD TO=YYYY-MM-DD (default: the 14 local days ending yesterday) -> var/report/
report: $(STAMP)  ## the HTML report into var/report/ (FROM=, TO=, WAREHOUSE_PATH=)
	$(BIN)/python -m pipelines.report $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

bench: $(STAMP)  ## the benchmarks (long): tables into benchmarks/results/
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.lake --out benchmarks/results/lake.md
	$(BIN)/python -m benchmarks.backfill --out benchmarks/results/backfill.md
	$(BIN)/python -m benchmarks.intraday --out benchmarks/results/intraday.md

clean:  ## remove .venv and var/ (the demo's warehouse and Dagster home)
	rm -rf $(VENV) var
