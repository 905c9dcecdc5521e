# Every target sets itself up on a fresh machine: a virtual environment in .venv with the
# project installed (editable) and its pinned dependencies.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: conformance test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Run every test case against the embedded reference SUT; writes pcaps/ and reports/.
conformance: $(STAMP)
	$(BIN)/msgin5g-conformance run --sut reference

## The harness's own tests, lint and type check.
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check msgin5g_conformance sut_adapters tests benchmarks conftest.py
	$(BIN)/ruff format --check msgin5g_conformance/*.py sut_adapters
	$(BIN)/msgin5g-conformance lint testcases

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected nothing: that is a broken test run, not a green one.
unit: $(STAMP)
	$(BIN)/python -m pytest tests -q -n 2 -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_relay.py --runs 5

clean:
	rm -rf $(VENV) pcaps reports build *.egg-info
