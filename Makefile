# Two entry points: `make run` (install + serve) and `make test` (install + every test).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The web app is built into the Python package, so `pip install` of a wheel needs no Node.
WEB_DIST  := src/voxbox/web/dist/index.html
WEB_DEPS  := web/node_modules/.package-lock.json
WEB_SRC   := $(shell find web/src web/public -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

.PHONY: run test install web lint bench wheel clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(WEB_DEPS): web/package.json web/package-lock.json
	bash scripts/node-deps.sh
	cd web && npm ci --no-audit --no-fund --loglevel=error

$(WEB_DIST): $(WEB_DEPS) $(WEB_SRC)
	cd web && npm run --silent build

install: $(STAMP) $(WEB_DIST)

web: $(WEB_DIST)

HOST ?= 127.0.0.1
PORT ?= 8080

run: install
	$(BIN)/voxbox serve --host $(HOST) --port $(PORT)

test: install
	bash scripts/test-deps.sh
	$(BIN)/ruff check
	$(BIN)/mypy
	cd web && npx tsc --noEmit && npx vitest run
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

bench: install
	$(BIN)/python benchmarks/messaging.py --scenario all --backend both
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/uploads.py
	$(BIN)/python benchmarks/groups.py --backend both
	$(BIN)/python benchmarks/export.py
	$(BIN)/python benchmarks/backup.py
	$(BIN)/python benchmarks/sync.py

wheel: install
	$(BIN)/pip wheel --quiet --no-deps -w dist .

clean:
	rm -rf $(VENV) voxbox-data .pytest_cache .mypy_cache .ruff_cache web/node_modules src/voxbox/web/dist
