# The two Quickstart commands (see README):
#   make run    set up .venv, then run the workflow on the embedded default config/config.yaml
#   make test   set up .venv, then lint and run the test suite
# Another config: make run CONFIG=config/examples/chignolin.yaml
# Benchmarks (tables under benchmarks/): make benchmark
#
# torch is installed first and pinned to the CPU build by default, so that pip never
# pulls multi-GB CUDA wheels on a CPU machine. On a GPU machine pass the CUDA build:
#   make run TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu126"
# An existing torch in the environment is kept as it is.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
CONFIG ?=
BIN := $(abspath $(VENV))/bin
export PATH := $(BIN):$(PATH)

.PHONY: setup run test lint benchmark clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[reference,torch,workflow,test]"
	touch $@

setup: $(VENV)/.installed

run: setup
	snakemake --workflow-profile workflow/profiles/default --cores $(CORES) \
		$(if $(CONFIG),--configfile $(CONFIG))

lint: setup
	ruff check cgpipe tests
	snakefmt --check Snakefile workflow/rules
	snakemake --lint --cores 1 > /dev/null

test: lint
	python -m pytest

benchmark: setup
	python benchmarks/reference_throughput.py

clean:
	rm -rf results logs .snakemake $(wildcard benchmarks/*/)
