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

.PHONY: setup run test lint benchmark clean cluster-packages

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	$(BIN)/python -m pip install --quiet -e ".[reference,torch,workflow,slurm,test]"
	touch $@

setup: $(VENV)/.installed

run: setup
	snakemake --workflow-profile workflow/profiles/default --cores $(CORES) \
		$(if $(CONFIG),--configfile $(CONFIG))

lint: setup
	ruff check cgpipe tests
	snakefmt --check Snakefile workflow/rules
	snakemake --lint --cores 1 > /dev/null

test: lint cluster-packages
	python -m pytest

# The Slurm test's daemons (Debian packages). Installed where this runs as root with
# apt-get (CI); elsewhere the test skips and says why. Nothing is started here.
CLUSTER_PACKAGES := slurm-wlm slurmdbd munge mariadb-server
cluster-packages:
	@if command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null \
		&& command -v munged >/dev/null && command -v mariadbd >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(CLUSTER_PACKAGES) for the Slurm test"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $(CLUSTER_PACKAGES) >/dev/null \
		|| { apt-get update -q >/dev/null && apt-get install -y -q $(CLUSTER_PACKAGES) >/dev/null; } \
		|| echo "could not install $(CLUSTER_PACKAGES): the Slurm test will skip"; \
	else echo "not root with apt-get: the Slurm test will skip (needs $(CLUSTER_PACKAGES))"; fi

benchmark: setup
	python benchmarks/reference_throughput.py
	python benchmarks/dry_run.py
	python benchmarks/simulation_throughput.py
	python benchmarks/training_throughput.py --make-env
	python benchmarks/backmap_throughput.py

clean:
	rm -rf results logs .snakemake $(wildcard benchmarks/*/)
