# Two entry points: `make run` (install + serve) and `make test` (install + every test).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/voxbox serve

test: $(STAMP)
	bash scripts/test-deps.sh
	$(BIN)/ruff check
	$(BIN)/mypy
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/messaging.py --scenario all --backend both
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/uploads.py

clean:
	rm -rf $(VENV) voxbox-data .pytest_cache .mypy_cache .ruff_cache
