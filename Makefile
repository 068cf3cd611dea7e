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
	$(BIN)/pip install --quiet -e '.[provider,observatory,dev]'
	touch $@

# mypy in an environment of its own (clkhash pins mypy_extensions < 0.5; mypy needs >= 1.0)
$(VENV)-mypy/bin/mypy:
	$(PYTHON) -m venv $(VENV)-mypy
	$(VENV)-mypy/bin/pip install --quiet mypy==2.4.1 types-PyYAML==6.0.12.20261122
	touch $@

install: $(BIN)/thb $(VENV)-mypy/bin/mypy

demo: install  ## simulate, run the provider kit, ingest and link, publish every quarter's DP release, serve the dashboard
	$(BIN)/thb simulate --out $(THB_DATA_DIR) --seed $(SEED) --scale $(SCALE) --no-kit
	$(BIN)/thb provider export $(THB_DATA_DIR)/providers --secret $(THB_DATA_DIR)/secrets --outbox $(THB_DATA_DIR)/landing
	$(BIN)/thb pipeline run
	$(BIN)/thb linkage quality $(THB_DATA_DIR)/truth
	$(BIN)/thb dashboard

check: install  ## the gates: lint, format and types (configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(VENV)-mypy/bin/mypy --python-executable $(BIN)/python

test: check  ## the gates, then the whole suite: unit, integration and doctests, in parallel
	$(BIN)/pytest

clean:
	rm -rf $(THB_DATA_DIR)
