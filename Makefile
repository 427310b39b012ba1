# Two commands for a fresh machine with Python >= 3.11: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test install schema bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/gateway demo-data --if-empty
	$(BIN)/gateway serve

test: install
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

clean:
	rm -rf $(VENV) .gateway .pytest_cache .hypothesis
