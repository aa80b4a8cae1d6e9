# Praxis agent cluster. `make help` lists the targets.
#
# Compose: `docker compose` (v2) when it works, else `docker-compose` (v1).
# Override with e.g. `make up COMPOSE=docker-compose`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PY              ?= python3
N               ?= 2
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

export IMAGE BASE_IMAGE PRAXIS_API_PORT PY

.PHONY: help up down ps logs scale status keys image base wheels local install \
        test test-unit test-integration test-e2e bench bench-quick clean clean-all

help: ## list targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'
	@echo "  compose command: $(COMPOSE)"

# --- cluster -------------------------------------------------------------------
up: image ## build what is missing, start the cluster, wait until healthy, list peers
	$(DC) up -d
	scripts/compose-wait.sh $(PROJECT) $(WAIT_TIMEOUT)
	@$(MAKE) --no-print-directory status

status: ## orchestrator health URL + one line per peer (name, role, peer_id)
	@n=$$(docker ps -q --filter label=com.docker.compose.project=$(PROJECT) | wc -l); \
	  $(PY) scripts/cluster-status.py $(API_URL) --expect $$(( n > 0 ? n - 1 : 0 )) --timeout 60

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

# --- build ---------------------------------------------------------------------
image: ## build the agent image (base and wheel cache first when missing/stale)
	images/build-image.sh

base: ## build the base image praxis-base:bookworm with debootstrap (root; FORCE=1 rebuilds)
	images/base/build-base.sh

wheels: ## fill the host wheel cache images/.cache/wheels (FORCE=1 refreshes)
	images/build-wheels.sh

# --- local runs ----------------------------------------------------------------
keys: ## create node keys + public entries in ./keys for local runs
	$(PY) gen_keys.py

local: ## a local cluster without Docker: orchestrator + N workers
	$(PY) -m agent local --workers $(N)

install: ## install the package and test deps into the host python
	$(PY) -m pip install -e '.[test]'

# --- tests and benchmarks ------------------------------------------------------
test: ## all tests: unit + integration, then end-to-end (Docker)
	$(PY) -m pytest tests/unit tests/integration -q
	$(MAKE) --no-print-directory test-e2e

test-unit: ## unit tests
	$(PY) -m pytest tests/unit -q

test-integration: ## integration tests (real agents on loopback)
	$(PY) -m pytest tests/integration -q

test-e2e: ## end-to-end tests against the compose cluster (builds the image)
	$(PY) -m pytest tests/e2e -q -s

bench: ## benchmarks
	$(PY) -m bench

bench-quick: ## short benchmark run
	$(PY) -m bench --quick

# --- cleanup -------------------------------------------------------------------
clean: ## down -v, remove the built images and caches (keeps the base image)
	-$(DC) down -v --remove-orphans
	-docker rmi -f $(IMAGE) $(IMAGE:%:latest=%):build-cache 2>/dev/null
	-docker image prune -f --filter label=praxis.build >/dev/null
	rm -rf images/.cache/wheels images/.cache/build.log .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +

clean-all: clean ## clean, plus the base image and the debootstrap cache
	-docker rmi -f $(BASE_IMAGE) 2>/dev/null
	rm -rf images/.cache

# --- Docker Swarm (deploy/swarm; README "Beyond one host") --------------------
STACK           ?= praxis
SWARM           := STACK=$(STACK) IMAGE=$(IMAGE) PRAXIS_API_PORT=$(PRAXIS_API_PORT) WAIT_TIMEOUT=$(WAIT_TIMEOUT) deploy/swarm/swarm.sh
.PHONY: swarm-up swarm-scale swarm-status swarm-down

swarm-up: image ## Swarm: init a single-node swarm if none, deploy the stack, wait healthy
	$(SWARM) up

swarm-scale: ## Swarm: run N generic workers: make swarm-scale N=6
	$(SWARM) scale $(N)

swarm-status: ## Swarm: services and the orchestrator's peers
	@$(SWARM) status

swarm-down: ## Swarm: remove the stack; leave the swarm only if swarm-up created it
	$(SWARM) down
