# mwa-lightning -- `make help` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The PyTorch pair installed first: an install default, a pair this project is tested with (on Linux, pip's default
# build of it is a CUDA one, about 3 GB of nvidia-* wheels). Choose the build your machine needs instead:
#   CPU only:  make install TORCH="torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu"
#   a CUDA 12.8 build:  make install TORCH="torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cu128"
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed-stamp

$(STAMP): pyproject.toml
	@echo "[install 1/4] the virtual environment $(VENV) ($(PYTHON))"
	$(PYTHON) -m venv $(VENV)
	@echo "[install 2/4] pip itself"
	$(PY) -m pip install -q --upgrade pip
	@echo "[install 3/4] PyTorch: $(TORCH) (the large download; TORCH=... in the Makefile picks a CPU-only build)"
	set -o pipefail; $(PY) -m pip install --progress-bar off $(TORCH) | { grep -v "^Requirement already satisfied" || true; }
	$(PY) -c "import torch; print('  torch', torch.__version__, '(CUDA build)' if torch.version.cuda else '(CPU build)')"
	@echo "[install 4/4] mwa-lightning, editable, with its dev tools (pytest, ruff, Jupyter's runner)"
	$(PY) -m pip install -q -e '.[dev]'
	@echo "installed: $(VENV) ($$(du -sh $(VENV) | cut -f1)); activate it with: source $(VENV)/bin/activate"
	touch $@

# the one command (the same as python -m mwa_lightning)
RUN := $(VENV)/bin/mwa-lightning
DATASET ?= cifar10
# the mixers: one shared config each (their names are the registry's, mwa_lightning/models/mixers/registry.py)
MIXERS ?= $(sort $(basename $(notdir $(wildcard configs/shared/mixer/*.yaml))))
CONFIG ?= configs/baselines/cifar10/mwa.yaml
DATA_DIR ?=
# extra command-line arguments for the training targets, e.g. ARGS="--trainer.max_epochs 5 --model.size XS"
ARGS ?=
DATA_ARG := $(if $(DATA_DIR),--data.init_args.data_dir $(DATA_DIR),)

STUDY ?= mixer-x-local

.PHONY: help install test test-slow lint format bench clean quickstart cifar10-cpu baselines ablations configs ddp tensorboard notebooks study gpu-check

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' -v study='$(STUDY)' \
		'{gsub(/\$$\(STUDY\)/, study "", $$2); printf "  make %-14s %s\n", $$1, $$2}'

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
	$(RUN) bench

quickstart: install ## train a small MWA ViT on the synthetic task on this CPU (about 1.5 minutes), logs/quickstart/
	$(RUN) fit --config configs/quickstart.yaml $(ARGS)

cifar10-cpu: install ## a small MWA ViT on CIFAR-10 in <= 10 CPU minutes (DATA_DIR=folder holding cifar-10-batches-py)
	$(RUN) fit --config configs/cifar10_cpu.yaml $(DATA_ARG) $(ARGS)

baselines: install ## every mixer (MIXERS=...) x ViT-S/4 on DATASET (cifar10, cifar100, tiny_imagenet), one after another
	@test -d configs/baselines/$(DATASET) || { echo "unknown DATASET=$(DATASET); expected one of: $$(ls configs/baselines | tr "\n" " ")"; exit 2; }
	set -e; for m in $(MIXERS); do $(RUN) fit --config configs/baselines/$(DATASET)/$$m.yaml $(DATA_ARG) $(ARGS); done

ablations: install ## every MWA ablation in configs/ablations/, each stacked on the CIFAR-10 MWA baseline, one after another
	set -e; for c in configs/ablations/*.yaml; do $(RUN) fit --config configs/baselines/cifar10/mwa.yaml --config $$c $(DATA_ARG) $(ARGS); done

configs: install ## regenerate configs/baselines/<dataset>/<mixer>.yaml from configs/shared/ (after adding a mixer or a dataset)
	$(RUN) configs

ddp: install ## CONFIG on every GPU of this node (DDP overlay configs/overlays/ddp.yaml)
	$(RUN) fit --config $(CONFIG) --config configs/overlays/ddp.yaml $(DATA_ARG) $(ARGS)

study: install ## run configs/studies/$(STUDY).yaml (STUDY= picks another; DATA_DIR= its data; resumable), report in results/$(STUDY)/
	@test -f configs/studies/$(STUDY).yaml || { echo "unknown STUDY=$(STUDY); expected one of: $$(ls configs/studies | sed 's/\.yaml//' | tr "\n" " ")"; exit 2; }
	$(RUN) study configs/studies/$(STUDY).yaml $(if $(DATA_DIR),--data-dir $(DATA_DIR),) $(ARGS)

gpu-check: install ## on one CUDA GPU, in minutes: every mixer trained through the CLI (bf16, compiled, db2) + bench, gpu_check/gpu_check.md
	$(RUN) gpu-check $(ARGS)

tensorboard: install ## serve TensorBoard on logs/ (http://localhost:6006)
	$(VENV)/bin/tensorboard --logdir logs --port 6006

notebooks: install ## open notebooks/ in JupyterLab (installed into .venv on first use; not a package dependency)
	@test -x $(VENV)/bin/jupyter-lab || { echo "installing JupyterLab into $(VENV)"; $(PY) -m pip install -q jupyterlab; }
	$(VENV)/bin/jupyter-lab notebooks/

clean: ## remove the virtual environment and caches (keeps logs/)
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
