# pod-patterns: the sidecar, ambassador and adapter pod patterns.
# `make up` runs the demo; `make test` runs every test tier. Both work on a fresh Debian 12
# machine: they install what is missing first (scripts/bootstrap-host.sh, as root).

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The proxies' hot path compiled with mypyc, installed as `pip install .` installs it, in a venv
# of its own; the proxies' tests run once more against it (the dev venv holds the pure build).
COMPILED_VENV ?= .venv-compiled
# ... on the interpreter the images ship (Debian's python3, the bench's too), where there is
# one: an asyncio difference between patch releases is then caught here, not in a pod.
COMPILED_PYTHON ?= $(if $(wildcard /usr/bin/python3),/usr/bin/python3,$(PYTHON))
PROXY_TESTS := tests/unit/podkit tests/unit/ambassador tests/unit/sidecar tests/integration/podkit \
	tests/integration/sidecar tests/integration/ambassador
PACKAGE_SOURCES := $(shell find podkit sidecar ambassador -name '*.py' 2>/dev/null)
PYTEST_ARGS ?=
COMPOSE ?= docker compose
# `make up ADAPTER_TLS=1`: the adapter over TLS with basic auth, Prometheus scraping it so.
ADAPTER_TLS ?=
COMPOSE_FILES := -f docker-compose.yml $(if $(ADAPTER_TLS),-f compose/adapter-tls.yml)
# checkov pins dependencies the project's venv cannot share: it gets a venv of its own.
CHECKOV_VENV ?= .venv-checkov
CHECKOV_REQUIREMENT := checkov>=3.2,<4
# Every kustomization: the base and each overlay (`make lint` renders and scans them all).
KUSTOMIZATIONS := k8s $(sort $(wildcard k8s/overlays/*))

.PHONY: help host install compiled test test-fast test-compiled images up down bench lint lock clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

host: ## install and start what the demo and tests need (Docker, Compose v2, peers); idempotent
	@bash scripts/bootstrap-host.sh

$(VENV)/.installed: pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.lock
	POD_PATTERNS_BUILD=pure $(PY) -m pip install --quiet --no-deps -e .
	@touch $@

install: $(VENV)/.installed ## create .venv with an editable install and the test tools

$(COMPILED_VENV)/.installed: pyproject.toml setup.py requirements-dev.lock $(PACKAGE_SOURCES)
	[ -x $(COMPILED_VENV)/bin/python ] || $(COMPILED_PYTHON) -m venv $(COMPILED_VENV)
	$(COMPILED_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPILED_VENV)/bin/python -m pip install --quiet -r requirements-dev.lock
	POD_PATTERNS_BUILD=compiled $(COMPILED_VENV)/bin/python -m pip install --quiet --no-deps \
		--force-reinstall .
	@touch $@

compiled: $(COMPILED_VENV)/.installed ## create .venv-compiled: the package built as users get it

$(CHECKOV_VENV)/.installed: requirements-checkov.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.lock
	@touch $@

images: host ## build the images (offline from a local Debian base when no registry answers)
	@bash scripts/build-images.sh

test: host install compiled images lint ## lint, every tier, then the proxies' tests compiled
	POD_PATTERNS_EXPECT_BUILD=pure $(PY) -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory test-compiled

test-compiled: compiled ## the proxies' unit and integration tests against the compiled build
	@# PYTHONSAFEPATH: neither pytest nor the services it starts may import the source tree.
	PYTHONSAFEPATH=1 POD_PATTERNS_EXPECT_BUILD=compiled \
		$(COMPILED_VENV)/bin/python -m pytest $(PROXY_TESTS) $(PYTEST_ARGS)

test-fast: install ## the unit tier only (seconds, no processes or Docker)
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

up: host images ## run the demo: every pod and a Prometheus scraping them (ADAPTER_TLS=1: adapter over TLS)
	$(COMPOSE) $(COMPOSE_FILES) up -d --wait
	@echo
	@echo "  sidecar (TLS)    https://localhost:$${SIDECAR_HOST_PORT:-8443}/   (curl -k: self-signed; http://localhost:$${SIDECAR_HTTP_HOST_PORT:-8000}/ redirects there)"
	@echo "  sidecar admin    http://localhost:$${SIDECAR_ADMIN_HOST_PORT:-9000}/metrics"
	@echo "  ambassador       http://localhost:$${AMBASSADOR_HOST_PORT:-8080}/   (3:1 across server1, server2; admin :$${AMBASSADOR_ADMIN_HOST_PORT:-9001})"
	@echo "  in-pod ambassador docker compose logs -f client   (90/10 to backend-v1/v2 from the client's localhost; admin :$${CLIENT_AMBASSADOR_ADMIN_HOST_PORT:-9005})"
	@echo "  redis (tcp mode) redis-cli -p $${REDIS_AMBASSADOR_HOST_PORT:-6380}   (two Redis replicas behind the ambassador; admin :$${REDIS_AMBASSADOR_ADMIN_HOST_PORT:-9006})"
	@echo "  adapter metrics  $(if $(ADAPTER_TLS),https,http)://localhost:$${ADAPTER_HOST_PORT:-9121}/metrics$(if $(ADAPTER_TLS),   (basic auth: the password is in the adapter-secrets volume))"
	@echo "  prometheus       http://localhost:$${PROMETHEUS_HOST_PORT:-9090}/graph?g0.expr=up   (every target; rules and alerts loaded)"
	@echo "  gitsync push     docker compose exec notes sh -c 'echo hi > /notes/hi.txt'   (pushed to gitserver; metrics :$${GITSYNC_PUSH_ADMIN_HOST_PORT:-9002})"
	@echo "  gitsync pull     http://localhost:$${SITE_HOST_PORT:-8081}/   (the repository, synced over SSH; metrics :$${GITSYNC_PULL_ADMIN_HOST_PORT:-9003})"
	@echo "  logagent         docker compose logs -f logagent rsyslog   (metrics :$${LOGAGENT_ADMIN_HOST_PORT:-9004})"
	@echo "  stop it with     make down"

down: ## stop the demo and remove its containers, networks and volumes
	@# Both files, so the secured adapter's one-shot and volume go too if it ran.
	$(COMPOSE) -f docker-compose.yml -f compose/adapter-tls.yml down --volumes --remove-orphans

bench: host install ## side by side: the adapter vs redis_exporter, the proxies (and tcp mode) vs nginx and HAProxy
	$(PY) bench/adapter_bench.py
	$(PY) bench/proxy_bench.py --scenario sidecar
	$(PY) bench/proxy_bench.py --scenario ambassador
	$(PY) bench/tcp_bench.py

lint: install $(CHECKOV_VENV)/.installed ## ruff, mypy, hadolint, yamllint, and checkov on every rendered kustomization
	$(VENV)/bin/ruff check podkit adapter sidecar ambassador echoserver gitsync logagent tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/hadolint Dockerfile images/*/Dockerfile
	$(VENV)/bin/yamllint -d relaxed docker-compose.yml compose/ k8s/ monitoring/
	@# What `kubectl apply -k` would send, scanned; the skipped checks and why: k8s/.checkov.yaml.
	@out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && set -e && \
	for k in $(KUSTOMIZATIONS); do \
	  mkdir -p "$$out/$$k" && kubectl kustomize "$$k" > "$$out/$$k/manifests.yaml"; \
	  config=k8s/.checkov-without-network-policies.yaml; \
	  if grep -q '^kind: NetworkPolicy$$' "$$out/$$k/manifests.yaml"; then config=k8s/.checkov.yaml; fi; \
	  echo "checkov: $$k ($$config)"; \
	  $(CHECKOV_VENV)/bin/checkov --config-file "$$config" -d "$$out/$$k"; \
	done

lock: install ## recompile requirements*.lock from pyproject.toml (needs PyPI)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 -o requirements.lock --no-header
	$(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 --extra test --extra lint -o requirements-dev.lock --no-header
	echo '$(CHECKOV_REQUIREMENT)' | $(VENV)/bin/uv pip compile - --universal --python-version 3.11 -o requirements-checkov.lock --no-header
	printf 'setuptools>=68\nmypy>=1.10\n' | $(VENV)/bin/uv pip compile - --universal --python-version 3.11 -o requirements-build.lock --no-header

clean: ## remove the venv and caches
	rm -rf $(VENV) $(CHECKOV_VENV) $(COMPILED_VENV) build .pytest_cache .mypy_cache .ruff_cache wheelhouse/*.whl
