# Two commands on a fresh clone: `make demo` (the demo, embedded store, no server) and `make test`;
# `make lab` opens JupyterLab on notebooks/.
# Both create .venv, install qinb with its test extras and build the local model directory.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export QINB_MODELS ?= $(CURDIR)/.models
MINILM := $(QINB_MODELS)/sentence-transformers/all-MiniLM-L6-v2/model.onnx

.PHONY: install models demo lab test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $@

install: $(BIN)/.installed

$(MINILM): | $(BIN)/.installed
	$(BIN)/qinb models

models: $(MINILM)

demo: install models
	$(BIN)/qinb demo --notebooks notebooks --reports reports

lab: install models
	$(BIN)/jupyter lab notebooks/

lint: install
	$(BIN)/ruff check qinb tests bench
	$(BIN)/mypy

test: install models lint
	$(BIN)/python -m pytest
