# anyotp developer Makefile.
#
# Everything runs inside a private virtualenv in $(VENV), built on demand from
# $(PY). The editable install is redone only when pyproject.toml changes (the
# stamp files live inside $(VENV), so `make clean` removes them too).

PY ?= python3
VENV = .venv
BIN = $(VENV)/bin

STAMP = $(VENV)/.anyotp-dev.stamp
DEMO_STAMP = $(VENV)/.anyotp-demo.stamp
BENCH_STAMP = $(VENV)/.anyotp-bench.stamp

PYTEST_ARGS ?=
DEMO_ARGS ?=
BENCH_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK = 1

.DEFAULT_GOAL := help

.PHONY: help venv demo test lint verifytypes format bench bench-smoke clean

help: ## Show this help
	@echo "anyotp make targets:"
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*?## "}; {printf "  %-8s %s\n", $$1, $$2}'
	@echo ""
	@echo "Variables: PY=$(PY)  PYTEST_ARGS='...'  DEMO_ARGS='...'  BENCH_ARGS='...'"

venv: $(STAMP) ## Create .venv and install -e '.[dev]'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[dev]'
	touch $@

# The demo needs only the runtime, its display and its options (the "demo" extra:
# rich; trio for --backend trio; the observer's packages for --observer), not the dev
# tools; `make test` later adds those to the same venv.
$(DEMO_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -e '.[demo]'
	touch $@

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install -e '.[dev,bench]'
	touch $@

demo: $(DEMO_STAMP) ## Install the demo extra only, run examples/demo.py (DEMO_ARGS=...)
	$(BIN)/python examples/demo.py $(DEMO_ARGS)

lint: $(STAMP) ## ruff, mypy --strict (src and examples), pyright --verifytypes
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy --strict examples
	$(MAKE) --no-print-directory verifytypes

# The public API must stay fully typed: pyright exits non-zero below a 100%
# completeness score and lists each symbol that is not.  PYTHONPATH: --verifytypes
# does not find the package through the editable install's .pth, so it is given src.
verifytypes: $(STAMP) ## pyright --verifytypes anyotp (the public API fully typed)
	PYTHONPATH=src $(BIN)/pyright --pythonpath $(BIN)/python --verifytypes anyotp --ignoreexternal

# `test` runs lint first, then pytest. pytest's exit status is passed straight
# through: in particular exit status 5 ("no tests collected") is non-zero, so
# make treats it as a failure. Do not add `-` or `|| true` to this recipe: an
# empty test run must fail the target (and therefore .ci/run).
test: lint ## Lint, then run the test suite (PYTEST_ARGS=...)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# A scaled-down run of every benchmark scenario with its count checks: lost or
# reordered messages fail it (exit status 1); missed ratio targets do not.
bench-smoke: $(STAMP) ## A quick benchmark run on asyncio and trio (CI: counts, not ratios)
	$(BIN)/python bench/run.py --quick --backends asyncio,trio

format: $(STAMP) ## ruff format + ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(BENCH_STAMP) ## Install bench extras, run bench/run.py (BENCH_ARGS=...)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean: ## Remove .venv, caches and build outputs
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build dist
	rm -rf src/*.egg-info
	find . -path ./.git -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
