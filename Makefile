# Fresh machine: `make run` opens the chat page on the seeds; `make test` runs the whole test suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run chat index test lint

setup: $(VENV)/.installed

# torch==2.13.0 first: pip takes the local CPU wheel for exactly that version (anything else pulls CUDA).
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	touch $@

run: setup
	$(BIN)/streamlit run app.py

chat: setup
	$(BIN)/assistant index seeds
	$(BIN)/assistant chat

index: setup
	$(BIN)/assistant index seeds

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest
