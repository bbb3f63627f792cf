# Two commands on a fresh machine: `make demo` and `make test`. Both set themselves up
# (a virtual environment in .venv with the package and its test tools) on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CORE   := $(VENV)/.core-stamp
STAMP  := $(VENV)/.dev-stamp
DEMO   := demo
WORKERS ?= 2

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

# The demo needs only the core package (DuckDB is included); tests need every extra.
$(CORE): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $(CORE)

$(STAMP): $(CORE)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(CORE)
	$(BIN)/stageless ingest dataset:california-housing --to duckdb:$(DEMO)/stageless.duckdb \
		--table california_housing
	$(BIN)/stageless train --source duckdb:$(DEMO)/stageless.duckdb --table california_housing \
		--target MedHouseVal --workers $(WORKERS) --output $(DEMO)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_train.py

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .ruff_cache build src/*.egg-info
