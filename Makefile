# facebench: `make demo`, `make test` and `make bench` set everything up from scratch (a .venv in the checkout).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.facebench-installed
# two pytest-xdist workers, a test file each (its module fixtures built once), the longest files first
# (tests/scheduling.py): 11-16 min on a 2-core machine from a cold world cache as the host's speed varies, 22-31 min
# on a host running 2x slow (docs/ci.md),
# against about 20 min in one process; `make test PYTEST_ARGS=` runs them in one process
PYTEST_ARGS ?= -n 2 --dist loadfile --no-loadscope-reorder
BENCH_ARGS ?=
# every zoo variant whose tiny weights ship, from the registry (the gate and the committed leaderboards evaluate them
# all); expanded by the shell when a recipe runs, after the install
SHIPPED_MODELS = $$($(BIN)/facebench models --names)
GATE_MODELS ?= $(SHIPPED_MODELS)

.PHONY: install demo test bench leaderboard gate gate-update claims clean

# Reinstall only when the packaging metadata changed (the install is editable: code edits need none).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# MTCNN's weights for `datasets prepare --align mtcnn` (tests/test_align.py): facenet-pytorch's own pins would
	# replace torch and numpy, so no extra can declare it; its files only, without its dependencies
	$(BIN)/python -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p results
	$(BIN)/facebench run --model facenet-baseline --attack-suite quick
	$(BIN)/facebench leaderboard --out results/leaderboards

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The performance harness (perf/): prints a table, writes perf/results.json; e.g. BENCH_ARGS='--device cuda'.
# The rendered face world is cached in the checkout, as the tests do.
bench: $(STAMP)
	FACEBENCH_CACHE="$${FACEBENCH_CACHE:-$(CURDIR)/.facebench-cache}" $(BIN)/python -m perf $(BENCH_ARGS)

# The committed leaderboards of the embedded default benchmark: the `standard` suite, then `full` (for the attack
# pages; it reuses standard's cells), on the shipped tiny zoo, LEADERBOARD_SAMPLES pairs / frames per goal, CPU.
# The store is committed with them, so on a fresh clone nothing is recomputed (--if-needed: a complete run holds
# every cell); a changed model, attack or parameter changes the cell ids, and those cells are computed and recorded
# in a new run.
LEADERBOARD_MODELS ?= $(SHIPPED_MODELS)
LEADERBOARD_SUITES ?= standard full
LEADERBOARD_SAMPLES ?= 50
LEADERBOARD_STORE ?= leaderboards/facebench-tiny.h5
leaderboard: $(STAMP)
	for s in $(LEADERBOARD_SUITES); do for m in $(LEADERBOARD_MODELS); do \
	  $(BIN)/facebench run --model $$m --attack-suite $$s --samples $(LEADERBOARD_SAMPLES) --device cpu \
	  --store $(LEADERBOARD_STORE) --if-needed -q > /dev/null || exit 1; done; done
	$(BIN)/facebench leaderboard --store $(LEADERBOARD_STORE) --out leaderboards

# The CI regression gate on the shipped tiny zoo (docs/ci.md): the quick suite on every shipped variant, computed
# afresh (the gate store is deleted first, so no cell is reused), then compared with leaderboards/baseline.json.
GATE_SAMPLES ?= 100
GATE_STORE ?= results/gate.h5
GATE_RUN = mkdir -p $(dir $(GATE_STORE)) && rm -f $(GATE_STORE) && for m in $(GATE_MODELS); do \
	  $(BIN)/facebench run --model $$m --attack-suite quick --samples $(GATE_SAMPLES) --device cpu --store $(GATE_STORE) -q \
	  > /dev/null || exit 1; done

gate: $(STAMP)
	$(GATE_RUN)
	$(BIN)/facebench check --baseline leaderboards/baseline.json --store $(GATE_STORE)

# After an intended change of a model or an attack: recompute and rewrite the baseline (commit it with the change).
gate-update: $(STAMP)
	$(GATE_RUN)
	$(BIN)/facebench check --baseline leaderboards/baseline.json --store $(GATE_STORE) --update

# The seeds' claims (docs/zoo.md): every grid point of every registered claim trained and evaluated into
# CLAIMS_WORK (resumable: what is there is not redone), then the tables between the claims markers of docs/zoo.md
# replaced. The full default grid takes hours on the 2-core CPU machine (about 18 hours of one core, docs/zoo.md;
# CLAIMS_ARGS='--jobs 2' shares it between two workers). Note that `make clean` deletes results/, the default work
# directory with it.
CLAIMS_WORK ?= results/claims
CLAIMS_ARGS ?=
claims: $(STAMP)
	$(BIN)/facebench claims --work $(CLAIMS_WORK) --docs docs/zoo.md $(CLAIMS_ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache
