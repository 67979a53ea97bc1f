# Two commands on a fresh machine:  make plan STACK=prod   and   make test      (make help lists every target)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# pytest-xdist workers for the unit tier: one per core (each plans the stacks once; the tier is CPU-bound).
TEST_WORKERS ?= auto
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --no-input
STACK ?= dev
STAMP := $(VENV)/.installed
POLICY_VENV := policies/venv

# The supported Pythons, read from pyproject.toml's requires-python (the one place they are written): ">=X,<Y".
REQUIRES_PYTHON := $(shell sed -n 's/^requires-python *= *"\(.*\)"/\1/p' pyproject.toml)
PYTHON_MIN := $(shell sed -n 's/^requires-python *= *".*>=\([0-9][0-9.]*\).*/\1/p' pyproject.toml)
PYTHON_BELOW := $(shell sed -n 's/^requires-python *= *".*<\([0-9][0-9.]*\).*/\1/p' pyproject.toml)

# The lock tool (make lock only): uv, pinned, in a throwaway venv under build/.
UV_VERSION := 0.13.9
LOCK_TOOLS := build/lock-tools
UV := $(LOCK_TOOLS)/bin/uv

.PHONY: help setup python-check policy-venv plan plan-all test check test-unit test-integration test-fast lint format \
	typecheck docs-check docs bench lock clean distclean emulators drill image

help:  ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /  \1\t/' | expand -t 20

, := ,
# A progress line on stderr (stdout stays the tool's own output): bold on a terminal, plain in logs, pipes and
# when NO_COLOR is set.
say = if [ -t 2 ] && [ -z "$${NO_COLOR:-}" ]; then printf '\033[1m%s\033[0m\n' "$(1)" >&2; else printf '%s\n' "$(1)" >&2; fi

# Refuse interpreter $(1), in one line, unless requires-python allows it; $(2) says what to do instead. (The
# interpreter only reports its version, so any Python, even a 2.7, gets the message rather than a traceback.)
check_python = [ -n "$(PYTHON_MIN)" ] && [ -n "$(PYTHON_BELOW)" ] || { echo "make: cannot read the Python bounds \
	from pyproject.toml (expected requires-python = \">=X,<Y\", found \"$(REQUIRES_PYTHON)\")" >&2; exit 1; }; \
	version=$$($(1) -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null) || { echo "make: cannot \
	run $(1): this project needs Python $(REQUIRES_PYTHON) (requires-python in pyproject.toml); $(2)" >&2; exit 1; }; \
	awk -v v="$$version" -v lo="$(PYTHON_MIN)" -v hi="$(PYTHON_BELOW)" 'function cmp(a, b,  x, y, i) { split(a, x, \
	"."); split(b, y, "."); for (i = 1; i <= 3; i++) if (x[i] + 0 != y[i] + 0) return x[i] + 0 < y[i] + 0 ? -1 : 1; \
	return 0 } BEGIN { exit !(cmp(v, lo) >= 0 && cmp(v, hi) < 0) }' || { echo "make: $(1) is Python $$version, but \
	this project needs Python $(REQUIRES_PYTHON) (requires-python in pyproject.toml); $(2)" >&2; exit 1; }
HINT_PYTHON = pass a supported one, e.g. make setup PYTHON=python3.13
HINT_VENV = $(VENV) was made with it: make distclean, then make setup PYTHON=python3.13 (for example)

python-check:  ## refuse a Python outside pyproject.toml's requires-python (every target using .venv checks first)
	@if [ -x $(PY) ]; then $(call check_python,$(PY),$(HINT_VENV)); else $(call check_python,$(PYTHON),$(HINT_PYTHON)); fi

setup: $(STAMP)  ## create .venv: the locked set from constraints.txt (hash-checked), then the project (editable)

$(STAMP): pyproject.toml constraints.txt | python-check
	@set -e; start=$$SECONDS; \
	if [ ! -x $(PY) ]; then \
	  $(call say,setup 1/3: creating $(VENV) with $(PYTHON) ($$($(PYTHON) -V 2>&1))); \
	  $(PYTHON) -m venv $(VENV); \
	else \
	  $(call say,setup 1/3: updating $(VENV) ($$($(PY) -V 2>&1)): pyproject.toml or constraints.txt changed); \
	fi; \
	$(call say,setup 2/3: installing the locked packages of constraints.txt with their hashes checked (about 3 minutes the first time)); \
	$(PIP) install -qq --require-hashes -r constraints.txt; \
	$(call say,setup 3/3: installing the project (editable; no dependencies: they are all locked) and checking the set); \
	$(PIP) install --quiet --no-deps --no-build-isolation -e .; \
	problems=$$($(PIP) check 2>&1) || { echo "$$problems" >&2; exit 1; }; \
	touch $(STAMP); \
	$(call say,setup: $(VENV) is ready ($$($(PIP) list --format=freeze 2>/dev/null | wc -l) packages$(,) $$((SECONDS - start)) s); next: make plan$(,) make test)

policy-venv: $(POLICY_VENV)/.installed  ## create policies/venv, the policy pack's virtualenv, from policies/requirements.txt

$(POLICY_VENV)/.installed: policies/requirements.txt
	@$(call check_python,$(PYTHON),$(HINT_PYTHON))
	@$(call say,policy-venv: creating $(POLICY_VENV) from policies/requirements.txt (hash-checked))
	@test -x $(POLICY_VENV)/bin/python || $(PYTHON) -m venv $(POLICY_VENV)
	@$(POLICY_VENV)/bin/python -m pip --disable-pip-version-check --no-input install -qq --require-hashes \
	  -r policies/requirements.txt
	@touch $@

plan: setup  ## offline plan of one stack (mock engine, no cloud): make plan STACK=prod
	@$(call say,plan: running the Pulumi program for stack $(STACK) under the mock engine (offline, no credentials))
	@$(PY) -m verify.plan --stack $(STACK)

plan-all: setup  ## offline plan of every stack
	@$(call say,plan-all: running the Pulumi program for every stack under the mock engine (offline, no credentials))
	@$(PY) -m verify.plan --all

test: check test-unit test-integration  ## everything CI runs, each once: static checks, unit + functional, integration

check: lint typecheck docs-check  ## static checks: ruff, pyright, generated docs in step, stack files valid
	$(VENV)/bin/check-jsonschema --schemafile docs/config.schema.json stacks/Pulumi.*.yaml

test-unit: setup  ## unit + functional tests (no emulators)
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m "not integration"

test-integration: setup  ## the integration tier: LocalStack + moto server on 127.0.0.1, and the drill
	$(PY) -m tools.emulators setup --if-available
	$(PY) -m pytest -q -m integration tests/integration

emulators: setup  ## create .venv-localstack (LocalStack needs Python 3.13) from pinned requirements
	$(PY) -m tools.emulators setup

drill: emulators  ## play the whole feedback loop against the emulators, printing each step
	$(PY) -m tools.drill

test-fast: setup  ## the unit tier only, stopping at the first failure (no functional, no emulators)
	$(PY) -m pytest -q -x -n $(TEST_WORKERS) -m "not integration" tests/unit

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

# benchmarks/requirements.txt's pins are all in constraints.txt (tests/unit/test_packaging.py), so setup installed them.
bench: setup  ## benchmarks, printed as tables (install Debian's wrk for the inference load generator)
	$(PY) benchmarks/plan_bench.py
	$(PY) benchmarks/inference_bench.py
	$(PY) benchmarks/drift_bench.py
	$(PY) benchmarks/ingest_bench.py
	$(PY) benchmarks/stream_consumer_bench.py
	$(PY) benchmarks/entity_mode_bench.py

INFERENCE_IMAGE ?= mlops-inference:local
image:  ## build the inference image locally (Docker with buildx, or Podman): make image INFERENCE_IMAGE=name:tag
	@if command -v docker >/dev/null 2>&1 && docker buildx version >/dev/null 2>&1 && docker info >/dev/null 2>&1; then \
	  docker buildx build --load -f containers/inference/Dockerfile -t $(INFERENCE_IMAGE) . ; \
	elif command -v podman >/dev/null 2>&1 && podman info >/dev/null 2>&1; then \
	  podman build --ignorefile containers/inference/Dockerfile.dockerignore \
	    -f containers/inference/Dockerfile -t $(INFERENCE_IMAGE) . ; \
	else \
	  echo 'make image: no container engine: needs Docker with buildx and a running daemon, or Podman' >&2; exit 1; \
	fi

# One universal resolution (every OS, CPython from PYTHON_MIN up), with the hashes of every file of every pinned
# release. The runtime and policy-pack locks are cut from it (-c constraints.txt), so all three agree. Existing pins
# are kept unless pyproject.toml needs another version; UPGRADE=1 moves every pin to the newest allowed.
UV_COMPILE = $(UV) pip compile --quiet --universal --python-version $(PYTHON_MIN) --generate-hashes \
	--custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade)
lock:  ## re-resolve the locks from pyproject.toml with uv: constraints.txt, requirements.txt, policies/
	@$(call say,lock: installing uv $(UV_VERSION) in $(LOCK_TOOLS))
	@test -x $(LOCK_TOOLS)/bin/python || { $(call check_python,$(PYTHON),$(HINT_PYTHON)); $(PYTHON) -m venv $(LOCK_TOOLS); }
	@$(LOCK_TOOLS)/bin/python -m pip --disable-pip-version-check --no-input install -qq uv==$(UV_VERSION)
	@$(call say,lock: constraints.txt: the dependencies$(,) the dev extra and the build backend (Python $(PYTHON_MIN)+; every platform))
	@$(LOCK_TOOLS)/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(UV_COMPILE) pyproject.toml - --extra dev -o constraints.txt
	@$(call say,lock: requirements.txt: the dependencies only (what pulumi install puts in $(VENV)))
	@$(UV_COMPILE) pyproject.toml -c constraints.txt -o requirements.txt
	@$(call say,lock: policies/requirements.txt: the policy-pack dependency group)
	@$(UV_COMPILE) --group pyproject.toml:policy-pack -c constraints.txt -o policies/requirements.txt
	@$(call say,lock: done; make setup installs the new set)

clean:  ## remove build output and caches (build/, *.egg-info, tool caches, .hypothesis/); keeps every venv
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .pyright .hypothesis .coverage .tmp
	find . \( -path ./.git -o -path './$(VENV)' -o -path ./.venv-localstack -o -path './$(POLICY_VENV)' \) -prune \
	  -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean  ## clean, and remove the venvs too: .venv, .venv-localstack, policies/venv
	rm -rf $(VENV) .venv-localstack $(POLICY_VENV)
