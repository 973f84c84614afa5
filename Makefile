# rw_mtl — every target sets itself up: a fresh machine needs only `make run` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch/torchvision are pinned to the pair that installs from this machine's disk (see README).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.DEFAULT_GOAL := help
.PHONY: help setup run test lint clean

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install rw_mtl with its dev extras

run: $(STAMP) ## train EW and RLW on the embedded multi_digits data (CPU, about a minute) and print test accuracy
	$(BIN)/python -m rw_mtl --multirun weighting/loss=ew,rlw

test: $(STAMP) ## run the test suite (fast, CPU, deterministic)
	$(BIN)/python -m pytest -q

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check rw_mtl tests scripts
	$(BIN)/ruff format --check rw_mtl tests scripts

clean: ## remove outputs and caches (keeps .venv)
	rm -rf outputs multirun .pytest_cache .ruff_cache
