# The two commands of the README: `make conformance` (the main job) and `make test`.
# Both install what they need: a venv with the package, and the pinned livekit-server build;
# `make test` also the real parts its proofs drive (nginx, tinyproxy, Chromium, Node packages,
# actionlint).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
RUN := bash scripts/isolated_run.sh
# CPython 3.11.7 races two threads that parse source (pytest formatting a failure, another thread
# printing a traceback with its carets) into "AST constructor recursion depth mismatch" and an
# INTERNALERROR. Without position tables no traceback parses source, so only pytest's thread does.
export PYTHONNODEBUGRANGES := 1

.PHONY: setup livekit tools test conformance lint clean

setup: $(VENV)/.installed livekit

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

livekit:
	@bash scripts/install_livekit_server.sh >/dev/null

# Each script is quiet and a fast no-op when its part is there (apt-get update only when needed).
tools:
	@bash scripts/install_tls_proxy.sh
	@bash scripts/install_browser.sh
	@bash scripts/install_report_tools.sh

# Lint and types first (seconds), then the project's own tests plus the conformance suite, strict,
# inside a private network namespace.
test: setup tools lint
	$(RUN) $(PY) -m pytest --estuary-strict $(PYTEST_ARGS)

# The conformance suite against the embedded fake server, with the report.
conformance: setup
	$(RUN) $(PY) -m pytest --pyargs conformance -p no:cacheprovider \
		--estuary-report estuary-report.json --estuary-report-md estuary-report.md $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check pytest_estuary fake_server conformance tests bench examples
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
