# Each target creates/uses .venv by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The PostgreSQL tests read their server from this; override for another server.
export STOCKWIRE_TEST_PG_DSN ?= postgresql://postgres@127.0.0.1:5432/test
DEMO_ARGS ?= --duration 60 --check
PYTEST_ARGS ?=

.PHONY: demo test check venv schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/stockwire demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

schema: $(STAMP)
	$(BIN)/stockwire schema

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ingest_cost.py
	$(BIN)/python bench/latency.py
	$(BIN)/python bench/edge_rss.py
	$(BIN)/python bench/rfid_accuracy.py
	$(BIN)/python bench/rfid_throughput.py
	$(BIN)/python bench/shelf_accuracy.py
	$(BIN)/python bench/modbus_poll.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info
