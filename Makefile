# Two commands for a fresh machine with Python >= 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install real-opa browser conformance schema bench clean

# Debian's chromium, for tests/browser (Playwright drives it; no browser is downloaded).
CHROMIUM := /usr/bin/chromium
# The GraphQL-over-HTTP audit (tests/conformance), installed when node is on the machine.
AUDIT := tests/conformance/node_modules/.package-lock.json

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Real OPA for tests/policy (OPA v1.20.2 in a Go c-shared library; no binary to download): the golden
# cases, the Rego tests and the OPA stand-in run under it as well as under regopy. Not a dependency in
# pyproject.toml: the package declares Python >= 3.14 yet works on 3.11, and only
# --ignore-requires-python installs it there, which a dependency cannot say (`pip install -e .` would
# refuse). A failed install leaves pip's answer in the log and no stamp (the next `make test` tries
# again): the tests that need real OPA skip, quoting it.
REAL_OPA_VERSION := 0.4.4
REAL_OPA_LOG := $(VENV)/real-opa-install.log

$(VENV)/.real-opa-$(REAL_OPA_VERSION): | $(VENV)/.installed
	@if $(BIN)/python -m pip install --quiet --ignore-requires-python 'opa-golib-python-bindings==$(REAL_OPA_VERSION)' >$(REAL_OPA_LOG) 2>&1; \
	then rm -f $(REAL_OPA_LOG); touch $@; \
	else echo "real OPA could not be installed, the tests under it will skip: $$(tail -n 1 $(REAL_OPA_LOG))"; fi

real-opa: $(VENV)/.real-opa-$(REAL_OPA_VERSION)

# The demo: the dashboard offers demo creators and the GraphQL IDE is on, unless set otherwise.
run: install
	$(BIN)/gateway demo-data --if-empty
	GATEWAY_DEMO=$${GATEWAY_DEMO:-1} GATEWAY_IDE=$${GATEWAY_IDE:-1} $(BIN)/gateway serve

browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian chromium for the browser tests"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q chromium >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } \
	      || echo "chromium could not be installed: the browser tests will skip"; \
	  else echo "no chromium and no apt-get as root to install it: the browser tests will skip"; fi; \
	fi

$(AUDIT): tests/conformance/package.json tests/conformance/package-lock.json
	npm ci --prefix tests/conformance --no-audit --no-fund --loglevel=error

conformance:
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory $(AUDIT); \
	else echo "no npm: the GraphQL-over-HTTP audit will skip"; fi

test: install real-opa browser conformance
	$(BIN)/mypy
	$(BIN)/gateway policy test
	$(BIN)/python -m pytest

schema: install
	$(BIN)/gateway schema > schema.graphql

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/policy.py
	$(BIN)/python bench/privacy.py
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/peers.py

clean:
	rm -rf $(VENV) .gateway .pytest_cache .hypothesis
