# Two commands on a fresh machine:  make plan STACK=prod   and   make test
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= dev
STAMP := $(VENV)/.installed

.PHONY: help setup plan plan-all test check test-unit test-integration test-fast lint format typecheck docs-check docs bench lock clean emulators drill

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 20

setup: $(STAMP)  ## create .venv and install the pinned dependencies

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

plan: setup  ## offline plan of one stack (mock engine, no cloud): make plan STACK=prod
	$(PY) -m verify.plan --stack $(STACK)

plan-all: setup  ## offline plan of every stack
	$(PY) -m verify.plan --all

test: check test-unit test-integration  ## everything CI runs, each once: static checks, unit + functional, integration

check: lint typecheck docs-check  ## static checks: ruff, pyright, generated docs in step

test-unit: setup  ## unit + functional tests (no emulators)
	$(PY) -m pytest -q -m "not integration"

test-integration: setup  ## the integration tier: LocalStack + moto server on 127.0.0.1, and the drill
	$(PY) -m tools.emulators setup --if-available
	$(PY) -m pytest -q -m integration tests/integration

emulators: setup  ## create .venv-localstack (LocalStack needs Python 3.13) from pinned requirements
	$(PY) -m tools.emulators setup

drill: emulators  ## play the whole feedback loop against the emulators, printing each step
	$(PY) -m tools.drill

test-fast: setup  ## the unit tier only, stopping at the first failure (no functional, no emulators)
	$(PY) -m pytest -q -x -m "not integration" tests/unit

lint: setup  ## ruff lint and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup  ## ruff format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: setup  ## pyright (standard mode)
	$(VENV)/bin/pyright

docs-check: setup  ## the README config reference and docs/config.schema.json match the code
	$(PY) tools/config_docs.py --check

docs: setup  ## regenerate the README config reference and docs/config.schema.json
	$(PY) tools/config_docs.py

bench: setup  ## benchmarks, printed as tables (install Debian's wrk for the inference load generator)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -r benchmarks/requirements.txt
	$(PY) benchmarks/plan_bench.py
	$(PY) benchmarks/inference_bench.py

INFERENCE_IMAGE ?= mlops-inference:local
.PHONY: image
image:  ## build the inference image locally (Docker with buildx, or Podman): make image INFERENCE_IMAGE=name:tag
	@if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker buildx build --load -f containers/inference/Dockerfile -t $(INFERENCE_IMAGE) . ; \
	elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then \
	  podman build --ignorefile containers/inference/Dockerfile.dockerignore \
	    -f containers/inference/Dockerfile -t $(INFERENCE_IMAGE) . ; \
	else \
	  echo 'make image: no container engine: needs Docker with buildx and a running daemon, or Podman' >&2; exit 1; \
	fi

lock: setup  ## refresh constraints.txt from the current environment
	{ echo '# Every resolved package, pinned (make lock refreshes it). Installed with: pip install -c constraints.txt -e ".[dev]"'; \
	  $(PY) -m pip freeze --exclude-editable | grep -v '^-e'; } > constraints.txt

clean:  ## remove the venvs, caches and build output
	rm -rf $(VENV) .venv-localstack .pytest_cache .ruff_cache build *.egg-info
