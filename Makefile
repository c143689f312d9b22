# facebench: `make demo`, `make test` and `make bench` set everything up from scratch (a .venv in the checkout).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.facebench-installed
PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: install demo test bench leaderboard clean

# Reinstall only when the packaging metadata changed (the install is editable: code edits need none).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p results
	$(BIN)/facebench run --model facenet-baseline --attack-suite quick
	$(BIN)/facebench leaderboard

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The performance harness (perf/): prints a table, writes perf/results.json; e.g. BENCH_ARGS='--device cuda'.
# The rendered face world is cached in the checkout, as the tests do.
bench: $(STAMP)
	FACEBENCH_CACHE="$${FACEBENCH_CACHE:-$(CURDIR)/.facebench-cache}" $(BIN)/python -m perf $(BENCH_ARGS)

leaderboard: $(STAMP)
	$(BIN)/facebench leaderboard

clean:
	rm -rf $(VENV) results .pytest_cache
