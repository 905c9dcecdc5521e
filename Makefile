# Every target sets itself up on a fresh machine: a virtual environment in .venv with the
# project installed (editable) and its pinned dependencies, and (for the HTML report) the
# pinned Node tools in node_modules when npm is available.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: conformance report test lint typecheck unit bench clean bytecode

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Node tools for the single-file HTML report (optional: skipped with a note without npm).
REPORT_TOOLS = node_modules/.installed
$(REPORT_TOOLS): package-lock.json
	@bash scripts/install-report-tools.sh
	@if [ -x node_modules/.bin/allure ]; then touch $(REPORT_TOOLS); fi

## The package's byte-code, written beside it: an editable install writes none, and where
## PYTHONDONTWRITEBYTECODE is set Python writes none either, so every process of a run or a test
## would compile the package again (run start-up 0.85 s -> 0.65 s with it). 0.1 s when up to date.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 msgin5g_conformance sut_adapters

## Run every test case against the embedded reference SUT into a run directory of its own,
## reports/runs/<time>-reference/ (results, JUnit, allure-results, pcaps, compliance.md/.json,
## index.html, summary.pdf); reports/latest and pcaps/ link to it. The run's status is the gate's
## (or the run's own when it broke): anything but 0 fails, the reports are written anyway.
conformance: $(STAMP) $(REPORT_TOOLS) bytecode
	@$(BIN)/msgin5g-conformance run --sut reference; rc=$$?; \
	if [ $$rc -ne 0 ]; then echo "make conformance: the run exited with status $$rc" >&2; fi; exit $$rc

## Matrix, HTML report, summary and gate of the newest run, rebuilt.
report: $(STAMP)
	$(BIN)/msgin5g-conformance report

## The harness's own tests, lint and type check.
test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check msgin5g_conformance sut_adapters tests benchmarks examples conftest.py
	$(BIN)/ruff format --check msgin5g_conformance sut_adapters
	$(BIN)/msgin5g-conformance lint testcases

typecheck: $(STAMP)
	$(BIN)/mypy

# pytest exits 5 when it collected nothing: that is a broken test run, not a green one.
# Four workers on two cores: most tests wait on timers (load average about 2), and the suite takes
# 6 minutes instead of 10.5 with two (1,240 tests, measured on a 2-core machine).
unit: $(STAMP) $(REPORT_TOOLS) bytecode
	$(BIN)/python -m pytest tests -q -n 4 --dist loadgroup -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

bench: $(STAMP) bytecode
	$(BIN)/python benchmarks/bench_relay.py --runs 5
	$(BIN)/python benchmarks/bench_hostile_files.py
	$(BIN)/python benchmarks/bench_startup.py --runs 5
	$(BIN)/python benchmarks/bench_suite.py --runs 3 --make-test
	$(BIN)/python benchmarks/bench_scale.py
	$(BIN)/python benchmarks/bench_load.py
	$(BIN)/python benchmarks/bench_analyze.py

clean:
	rm -rf $(VENV) pcaps reports build *.egg-info node_modules
