# mwa-lightning -- `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The PyTorch pair to install first (the CPU machines of this project have exactly this pair on disk);
# override on other machines, e.g. `make install TORCH="torch torchvision"`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

.PHONY: help install test test-slow lint format bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

install: $(STAMP) ## make the virtual environment .venv and install the package with its dev tools

test: install ## run the test suite (the fast default; slow tests excluded)
	$(PY) -m pytest -q

test-slow: install ## run only the slow tests
	$(PY) -m pytest -q -m slow

lint: install ## ruff check and format check
	$(PY) -m ruff check mwa_lightning tests
	$(PY) -m ruff format --check mwa_lightning tests

format: install ## apply ruff's fixes and formatting
	$(PY) -m ruff check --fix mwa_lightning tests
	$(PY) -m ruff format mwa_lightning tests

bench: install ## benchmark mixers, the Haar fast path and model sizes (table + CSV under bench_results/)
	$(PY) -m mwa_lightning.bench

clean: ## remove the virtual environment and caches (keeps logs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
