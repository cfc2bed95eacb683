# Two entry points that work on a machine with only python3 and make:
#   make demo   sets everything up and runs the demo against the local sandbox
#   make test   sets everything up and runs lint, types and the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint typecheck unit sandbox clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/databar-mcp demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/pyright

unit: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck unit

sandbox: $(STAMP)
	$(BIN)/databar-mcp sandbox --port 8765

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache examples/out
