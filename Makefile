# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
SEED   ?= 2025
SCALE  ?= 1
export THB_DATA_DIR ?= $(CURDIR)/data

.PHONY: demo test check install clean

$(BIN)/thb: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/thb

demo: install  ## simulate, ingest, publish every quarter's DP release, then serve the dashboard
	$(BIN)/thb simulate --out $(THB_DATA_DIR) --seed $(SEED) --scale $(SCALE)
	$(BIN)/thb pipeline run
	$(BIN)/thb dashboard

check: install  ## the gates: lint, format and types (configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: check  ## the gates, then the whole suite: unit, integration and doctests, in parallel
	$(BIN)/pytest

clean:
	rm -rf $(THB_DATA_DIR)
