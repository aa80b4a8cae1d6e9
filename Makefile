# Praxis agent cluster. `make help` lists the targets.
#
# Python: every Python target runs in the project virtualenv $(VENV) (default
# ./.venv), created from $(PY) and filled with `pip install -e '.[test]'` on
# first use. Its stamp file is keyed on pyproject.toml (and $(PY)), so a
# change of the dependencies refreshes it on the next make; nothing is ever
# installed into $(PY) itself. pip's download/wheel cache is shared
# ($(PIP_CACHE_DIR), pip's default), so a second venv takes seconds.
#
# Compose: `docker compose` (v2) when it works, else `docker-compose` (v1).
# Override with e.g. `make up COMPOSE=docker-compose`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY              ?= python3
VENV            ?= $(CURDIR)/.venv
VPY             := $(VENV)/bin/python
PIP_CACHE_DIR   ?= $(or $(HOME),/root)/.cache/pip
# The stamp: which pyproject.toml (and base python) the venv was filled from.
DEPS_KEY        := $(shell { cat pyproject.toml; echo '$(PY)'; } | sha256sum | cut -c1-16)
VENV_STAMP      := $(VENV)/.praxis-test-$(DEPS_KEY)
BENCH_STAMP     := $(VENV)/.praxis-bench-$(DEPS_KEY)
N               ?= 2
# Extra arguments for `make local`, e.g. LOCAL_ARGS="--api-port 22000 --p2p-port 22100"
LOCAL_ARGS      ?=
# The project name plain `docker compose` / `docker-compose` would use here
# too ($COMPOSE_PROJECT_NAME, else the directory name), so that their
# exec/logs/ps commands see the containers `make up` started.
PROJECT         ?= $(or $(COMPOSE_PROJECT_NAME),$(shell basename "$(CURDIR)" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9_-'))
IMAGE           ?= praxis-agent:latest
BASE_IMAGE      ?= praxis-base:bookworm
PRAXIS_API_PORT ?= 8000
WAIT_TIMEOUT    ?= 180
COMPOSE         ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
DC              := $(COMPOSE) -p $(PROJECT) -f docker-compose.yml
API_URL         := http://127.0.0.1:$(PRAXIS_API_PORT)
PYTEST          := $(VPY) -m pytest

export IMAGE BASE_IMAGE PRAXIS_API_PORT PIP_CACHE_DIR
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv up down ps logs scale status keys image base wheels local install \
        up-monitoring test test-quick test-unit test-integration test-e2e bench bench-quick clean clean-all

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'
	@echo "  compose command: $(COMPOSE); python: $(VPY) (from $(PY))"

# --- python environment --------------------------------------------------------
venv: $(VENV_STAMP) ## create/refresh the project virtualenv .venv (done by every Python target)

# (Re)create the venv when it is missing, broken, or from another Python than
# $(PY); then install the project (editable) with its test extras.
$(VENV_STAMP):
	@set -euo pipefail; t0=$$(date +%s); \
	 want="$$('$(PY)' -c 'import sys; print(sys.version)' 2>/dev/null)" \
	   || { echo "make: PY=$(PY) does not run; set PY to a Python 3.11/3.12 interpreter" >&2; exit 1; }; \
	 have="$$('$(VPY)' -c 'import sys; print(sys.version)' 2>/dev/null || true)"; \
	 if [[ "$$have" != "$$want" ]] || ! '$(VPY)' -m pip --version >/dev/null 2>&1; then \
	   echo "[venv] creating $(VENV) from $(PY) ($$('$(PY)' -c 'import sys; print(sys.executable)'))"; \
	   rm -rf '$(VENV)'; \
	   '$(PY)' -m venv '$(VENV)' || { echo "make: '$(PY) -m venv' failed: on Debian/Ubuntu install python3-venv (apt-get install python3-venv)" >&2; exit 1; }; \
	 fi; \
	 echo "[venv] pip install -e '.[test]' into $(VENV) (pip cache $(PIP_CACHE_DIR))"; \
	 '$(VPY)' -m pip install -q --use-pep517 --cache-dir '$(PIP_CACHE_DIR)' -e '.[test]'; \
	 rm -f '$(VENV)'/.praxis-test-*; touch '$@'; \
	 echo "[venv] ready in $$(( $$(date +%s) - t0 ))s: $$('$(VPY)' --version), $$('$(VPY)' -m pip list 2>/dev/null | tail -n +3 | wc -l) packages"

$(BENCH_STAMP): $(VENV_STAMP)
	'$(VPY)' -m pip install -q --use-pep517 --cache-dir '$(PIP_CACHE_DIR)' -e '.[test,bench]'
	@rm -f '$(VENV)'/.praxis-bench-*; touch '$@'

# --- cluster -------------------------------------------------------------------
up: image ## build what is missing, start the cluster, wait until healthy, list peers
	$(DC) up -d
	scripts/compose-wait.sh $(PROJECT) $(WAIT_TIMEOUT)
	@$(MAKE) --no-print-directory status
	@echo "cluster page: $(API_URL)/ui"

status: $(VENV_STAMP) ## orchestrator health URL + one line per peer (name, role, peer_id)
	@n=$$(docker ps --filter label=com.docker.compose.project=$(PROJECT) --format '{{.Label "com.docker.compose.service"}}' | grep -vcx prometheus); \
	  $(VPY) scripts/cluster-status.py $(API_URL) --expect $$(( n > 0 ? n - 1 : 0 )) --timeout 60

down: ## stop the cluster and remove its containers, network and volumes (keys too)
	$(DC) down -v --remove-orphans

ps: ## containers and their health
	$(DC) ps

logs: ## follow the logs (SERVICE=orchestrator for one service)
	$(DC) logs -f --tail=100 $(SERVICE)

scale: ## run N generic workers: make scale N=5
	$(DC) up -d --scale worker=$(N) --no-recreate
	scripts/compose-wait.sh $(PROJECT) $(WAIT_TIMEOUT)
	@$(MAKE) --no-print-directory status

up-monitoring: image ## the cluster plus Prometheus (compose profile "monitoring"), its URL
	images/prometheus/build-image.sh
	$(DC) --profile monitoring up -d
	scripts/compose-wait.sh $(PROJECT) $(WAIT_TIMEOUT)
	@$(MAKE) --no-print-directory status
	@echo "cluster page: $(API_URL)/ui   Prometheus: http://127.0.0.1:$${PRAXIS_PROMETHEUS_PORT:-9090}/alerts"

# --- build ---------------------------------------------------------------------
# The image scripts get the venv's python as $$PY: it has pip, whatever $(PY) has.
image: $(VENV_STAMP) ## build the agent image (base and wheel cache first when missing/stale)
	PY='$(VPY)' images/build-image.sh

base: ## build the base image praxis-base:bookworm with debootstrap (root; FORCE=1 rebuilds)
	images/base/build-base.sh

wheels: $(VENV_STAMP) ## fill the host wheel cache images/.cache/wheels (FORCE=1 refreshes)
	PY='$(VPY)' images/build-wheels.sh

# --- local runs ----------------------------------------------------------------
keys: $(VENV_STAMP) ## create node keys + public entries in ./keys for local runs
	$(VPY) gen_keys.py

local: $(VENV_STAMP) ## a local cluster without Docker: orchestrator + N workers (Ctrl-C stops all)
	$(VPY) -m agent local --workers $(N) $(LOCAL_ARGS)

install: venv ## (kept for old habits) = make venv; nothing goes into the host python

# --- tests and benchmarks ------------------------------------------------------
test: ## all tests: unit + integration, then end-to-end (Docker); sets up .venv first
	$(MAKE) --no-print-directory test-quick
	$(MAKE) --no-print-directory test-e2e

test-quick: $(VENV_STAMP) ## unit + integration tests (no Docker)
	$(PYTEST) tests/unit tests/integration -q

test-unit: $(VENV_STAMP) ## unit tests
	$(PYTEST) tests/unit -q

test-integration: $(VENV_STAMP) ## integration tests (real agents on loopback)
	$(PYTEST) tests/integration -q

# The fixture runs images/build-image.sh: it gets the venv's python as $$PY too.
# Swarm runs last, in a session of its own: `docker swarm leave` detaches the
# containers of compose projects on user-defined networks (moby/moby#42877),
# so it must not run while the compose clusters of the other scenarios exist.
test-e2e: $(VENV_STAMP) ## end-to-end tests: compose cluster scenarios, then Swarm (builds the image)
	PY='$(VPY)' $(PYTEST) tests/e2e -q -s --ignore=tests/e2e/test_swarm.py
	PY='$(VPY)' $(PYTEST) tests/e2e/test_swarm.py -q -s

bench: $(BENCH_STAMP) ## benchmarks
	$(VPY) -m bench

bench-quick: $(BENCH_STAMP) ## short benchmark run
	$(VPY) -m bench --quick

# --- cleanup -------------------------------------------------------------------
clean: ## down -v, remove the built images and caches (keeps the base image)
	-$(DC) down -v --remove-orphans
	-docker rmi -f $(IMAGE) $(IMAGE:%:latest=%):build-cache 2>/dev/null
	-docker image prune -f --filter label=praxis.build >/dev/null
	rm -rf images/.cache/wheels images/.cache/build.log .pytest_cache $(VENV)
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +

clean-all: clean ## clean, plus the base image and the debootstrap cache
	-docker rmi -f $(BASE_IMAGE) 2>/dev/null
	rm -rf images/.cache

# --- Docker Swarm (deploy/swarm; README "Beyond one host") --------------------
STACK           ?= praxis
SWARM           := STACK=$(STACK) IMAGE=$(IMAGE) PRAXIS_API_PORT=$(PRAXIS_API_PORT) WAIT_TIMEOUT=$(WAIT_TIMEOUT) PY=$(VPY) deploy/swarm/swarm.sh
.PHONY: swarm-up swarm-scale swarm-status swarm-down

swarm-up: image $(VENV_STAMP) ## Swarm: init a single-node swarm if none, deploy the stack, wait healthy
	$(SWARM) up

swarm-scale: $(VENV_STAMP) ## Swarm: run N generic workers: make swarm-scale N=6
	$(SWARM) scale $(N)

swarm-status: $(VENV_STAMP) ## Swarm: services and the orchestrator's peers
	@$(SWARM) status

swarm-down: ## Swarm: remove the stack; leave the swarm only if swarm-up created it
	$(SWARM) down
