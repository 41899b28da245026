# `make run` and `make test` work from a fresh clone: they create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
CONSTRAINTS := .ci/constraints.txt

$(BIN)/hjepa: pyproject.toml $(CONSTRAINTS)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[dev,nav]"
	touch $@

.PHONY: setup run test
setup: $(BIN)/hjepa

run: setup
	$(BIN)/hjepa run fourrooms --quick --out runs/fourrooms-quick

test: setup
	$(BIN)/python -m pytest -q
