# scalper: every target installs what it needs first (a fresh machine has only Python 3.11).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Test runs are bounded: one test may not hang the suite.
PYTEST_ARGS ?=

.PHONY: all install run test lint bench soak clean exchange check-config

all: test

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (scalper needs Python >= 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,plot]'
	touch $(STAMP)

install: $(STAMP)

## Trade against the built-in simulated exchange (no keys needed). Ctrl+C stops gracefully.
run: $(STAMP)
	$(BIN)/scalper run $(ARGS)

## The whole test suite, with coverage; the pure core must stay >= 95 % covered.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" --cov=scalper --cov-report=term --cov-report= $(PYTEST_ARGS)
	$(BIN)/python -m coverage report --include='scalper/core/*' --fail-under=95

lint: $(STAMP)
	$(BIN)/ruff check scalper tests
	$(BIN)/ruff format --check scalper
	$(BIN)/mypy scalper

bench: $(STAMP)
	$(BIN)/scalper bench $(ARGS)

## Long runs kept out of `make test`: the chaos soak (SOAK_SECONDS, default 600), the load
## run, deep fuzzing, and the other slow tests; -s prints the soak table and load numbers.
SOAK_SECONDS ?= 600
soak: $(STAMP)
	HYPOTHESIS_PROFILE=explore SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m pytest -m slow -s $(PYTEST_ARGS)

exchange: $(STAMP)
	$(BIN)/scalper exchange $(ARGS)

check-config: $(STAMP)
	$(BIN)/scalper check-config $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
