# One entry point for people and CI. Every target bootstraps .venv from pyproject.toml.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck unit demo dev sim bench report clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest

# DAGSTER_HOME when set, else var/dagster/ with a link to dagster.yaml (pipelines/demo.py)
demo: $(STAMP)
	$(BIN)/python -m pipelines.demo

dev: $(STAMP)
	$(BIN)/python -m pipelines.demo --ui

sim: $(STAMP)
	$(BIN)/python -m pipelines.jambonz.simulator --port 8765

# FROM=YYYY-MM-DD TO=YYYY-MM-DD (default: the 14 local days ending yesterday) -> var/report/
report: $(STAMP)
	$(BIN)/python -m pipelines.report $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO))

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) var
