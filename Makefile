# Two commands: `make demo` and `make test`. Each installs what is missing first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
HOST ?= 127.0.0.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test install postgis db serve lint bench clean

demo: db ## set up, load the demo cooperative, serve on http://$(HOST):$(PORT)
	$(BIN)/commons-map demo load
	$(BIN)/commons-map serve --host $(HOST) --port $(PORT)

test: postgis ## set up, then run the whole suite against a real PostGIS
	scripts/ensure-axe.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	PYTHON=$(PYTHON) scripts/ensure-system.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

postgis: install
	scripts/ensure-postgis.sh

db: postgis
	$(BIN)/commons-map db upgrade

serve: db
	$(BIN)/commons-map serve --host $(HOST) --port $(PORT)

bench: postgis ## the benchmarks, each beside the tool a cooperative would otherwise use (slow: about 20 min)
	scripts/ensure-bench.sh
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/ogc.py --tipg .bench/tipg/bin/uvicorn
	$(BIN)/python bench/ledger.py
	$(BIN)/python bench/reservations.py
	$(BIN)/python bench/soil_reports.py

lint: install ## ruff over the code (installed on first use: it is not needed to run or test)
	$(BIN)/python -m ruff --version >/dev/null 2>&1 || $(BIN)/python -m pip install -q 'ruff>=0.6'
	$(BIN)/python -m ruff check commons_map api ingest maps tests bench

clean:
	rm -rf $(VENV) .pytest_cache
