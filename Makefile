# The README's commands. Every target sets itself up on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup  ## generate the demo data set and run the main job on it
	$(BIN)/sms-ledger demo

test: setup  ## run the whole test suite
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check analysis tests

clean:
	rm -rf data/raw/demo data/interim/send_log reports/*
