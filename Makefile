# regcred: `make demo` runs a rotation end to end on the local stack; `make test` passes the tests.
# Both install what they need (Debian packages, .venv) through scripts/setup.sh.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STACK_DIR ?= .stack

.PHONY: setup demo test test-sam test-unit test-integration lint format bench stack-up stack-down clean

setup:
	@scripts/setup.sh

demo: setup
	@scripts/demo.sh

test: setup
	$(PY) -m pytest -q -p no:cacheprovider
	@$(MAKE) --no-print-directory test-sam

# The functions as deployed: sam build + sam local invoke against the local stack, in a network namespace
# with its own dockerd (root; installs docker.io and debootstrap if missing). See scripts/sam_tier.sh.
test-sam: setup
	scripts/sam_tier.sh

test-unit: setup
	$(PY) -m pytest -q tests/unit

test-integration: setup
	$(PY) -m pytest -q tests/integration

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	scripts/sam.sh validate --lint

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: setup
	@for b in bench/*.py; do $(PY) "$$b" || exit 1; done

stack-up: setup
	$(PY) -m devstack.stack up --dir $(STACK_DIR)
	@echo "source $(STACK_DIR)/env to use it"

stack-down:
	@if [ -x $(PY) ]; then $(PY) -m devstack.stack down --dir $(STACK_DIR); fi

clean: stack-down
	rm -rf $(VENV) .venv-sam .aws-sam .pytest_cache .mypy_cache .ruff_cache
