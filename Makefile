# facebench: `make demo` and `make test` set everything up from scratch (a .venv in the checkout).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.facebench-installed
PYTEST_ARGS ?=

.PHONY: install demo test leaderboard clean

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

leaderboard: $(STAMP)
	$(BIN)/facebench leaderboard

clean:
	rm -rf $(VENV) results .pytest_cache
