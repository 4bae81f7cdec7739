# Two commands on a fresh clone: `make demo` (the demo, embedded store, no server) and `make test`;
# `make lab` opens JupyterLab on notebooks/.
# Both create .venv, install qinb with its test extras and build the local model directory in
# the one place the library, the `qinb` command and the notebooks look: ~/.qinb/models (or
# $QINB_MODELS where that is set).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
MODELS := $(or $(QINB_MODELS),$(HOME)/.qinb/models)
MINILM := $(MODELS)/sentence-transformers/all-MiniLM-L6-v2/model.onnx

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

# containers and dev boxes often run as root, which JupyterLab refuses without --allow-root
lab: install models
	$(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root)

lint: install
	$(BIN)/ruff check qinb tests bench
	$(BIN)/mypy

# a test file to a worker, on every core: a file's tests share one process (test_faults'
# tally, module fixtures); `pytest tests/test_x.py` alone runs in one process as usual
test: install models lint
	$(BIN)/python -m pytest -n auto --dist loadfile
