# One command per job. Each creates .venv on first use, installing torch 2.13.0 (CPU build) first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow test-all lint format bench docs tutorial-pages clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,docs,all]"  # every extra, so that no test skips for a missing one
	touch $(STAMP)

demo: $(STAMP)  ## train, backtest, export to ONNX and serve on the bundled bike-flow grid
	$(BIN)/darts-mim demo --out demo_output

test: $(STAMP)  ## the default test run (slow tests excluded)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)  ## only the slow tests
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)  ## all benchmarks (prints tables; several minutes)
	$(BIN)/python benchmarks/run_all.py

docs: $(STAMP)  ## the documentation site in site/, warnings are errors (its examples: tests/test_docs.py)
	$(BIN)/python docs/render_tutorials.py --check
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

tutorial-pages: $(STAMP)  ## re-run the tutorials (fast mode) and write their pages in docs/tutorials
	MPLBACKEND=Agg $(BIN)/python docs/render_tutorials.py

clean:
	rm -rf $(VENV) demo_output site
