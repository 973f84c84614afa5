# rw_mtl — every target sets itself up: a fresh machine needs only `make run` or `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch/torchvision are pinned to the pair that installs from this machine's disk (see README).
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1

.DEFAULT_GOAL := help
DEMO_DIR ?= outputs/demo
RUN_DIR ?= outputs/run
EXPERIMENTS := table1 table3 table4 table5 table6 table7 table8 fig1 fig2 table4_all litmus_all
.PHONY: help setup run demo litmus report test lint bench mutate clean table2 $(EXPERIMENTS)

help: ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'
	@echo "  $(EXPERIMENTS): the paper's sweeps (GPU), then their report; DRY=1 lists the jobs, ARGS=... adds overrides"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH_PINS)
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install rw_mtl with its dev extras

run: $(STAMP) ## train EW and RLW on the embedded multi_digits data, then compare them (CPU: a few minutes a job)
	$(BIN)/python -m rw_mtl --multirun weighting/loss=ew,rlw hydra.sweep.dir=$(RUN_DIR)
	$(BIN)/python -m rw_mtl.report $(RUN_DIR)

demo: $(STAMP) ## the litmus test on multi_digits: EW, RLW, RGW, MGDA-UB, CAGrad x 3 seeds, then the report ending with the verdicts (CPU: 15 jobs of a few minutes)
	$(BIN)/python -m rw_mtl -m weighting/loss=ew,rlw seed=0,1,2 logger=none hydra.sweep.dir=$(DEMO_DIR)
	$(BIN)/python -m rw_mtl -m weighting/grad=rgw,mgda_ub,cagrad weighting/loss=ew seed=0,1,2 logger=none hydra.sweep.dir=$(DEMO_DIR)
	$(BIN)/python -m rw_mtl.report $(DEMO_DIR)

litmus: $(STAMP) ## does METHOD=<name|my_pkg.Class> beat random weighting? vs EW and RLW/RGW on DATASETS (default multi_digits) x SEEDS (3)
	$(BIN)/python -m rw_mtl litmus method=$(METHOD) datasets=$(or $(DATASETS),multi_digits) seeds=$(or $(SEEDS),3) $(ARGS)

$(EXPERIMENTS): $(STAMP)
ifdef DRY
	$(BIN)/python -m rw_mtl.sweep $@ $(ARGS)
else
	$(BIN)/python -m rw_mtl +experiment=$@ $(ARGS) || { $(BIN)/python -m rw_mtl.sweep $@ --check $(ARGS); exit 1; }
	$(BIN)/python -m rw_mtl.sweep $@ --check $(ARGS)
	$(BIN)/python -m rw_mtl.report outputs/$@
endif

table2: $(STAMP) ## Table 2: the prepared XTREME split sizes beside the paper's (DATA=<paths.data_dir>; scripts/prepare_xtreme.py)
	$(BIN)/python scripts/prepare_xtreme.py --table2 $(if $(DATA),--data-dir $(DATA))

report: $(STAMP) ## tables and figures for DIR=<run or sweep dir> (python -m rw_mtl.report)
	$(BIN)/python -m rw_mtl.report $(DIR)

bench: $(STAMP) ## step time of every weighting relative to EW (PRESET=nyuv2|celeba40|digits; GPU for the real numbers)
	$(BIN)/python scripts/bench_step.py --preset $(or $(PRESET),nyuv2)

test: $(STAMP) ## run the test suite (fast, CPU, deterministic; a worker per core, at most 4, each file on one worker)
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 --dist loadfile

mutate: $(STAMP) ## mutation testing (mutmut) of weighting, tasks, report, multi_digits; score per module; MUTANTS='rw_mtl.report.*' for a part (docs/testing.md)
	$(BIN)/pip install -q -e '.[mutate]'
	RW_MTL_TORCH_THREADS=1 OMP_NUM_THREADS=1 $(BIN)/mutmut run --max-children $(or $(JOBS),2) $(MUTANTS)
	$(BIN)/python scripts/mutation_score.py mutants

lint: $(STAMP) ## ruff check + format check
	$(BIN)/ruff check rw_mtl tests scripts
	$(BIN)/ruff format --check rw_mtl tests scripts

clean: ## remove outputs and caches (keeps .venv)
	rm -rf outputs multirun mutants .pytest_cache .ruff_cache
