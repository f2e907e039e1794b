# The two commands: `make run` starts the platform on the embedded default; `make test` runs
# the full suite. Both install everything they need first (pinned: uv.lock, package-lock.json).
UV_VERSION := 0.13.8
# The interpreter's real path, not a shim (pyenv's): uv compares it with the virtualenv's
# and would otherwise recreate .venv on every `uv run`, dropping the launcher built into it.
PYTHON ?= $(shell $$(command -v python3.11 || command -v python3) -c 'import sys; print(sys.executable)')
TOOLS := .tools
UV := $(TOOLS)/bin/uv
SQS_DEPS := tools/local-sqs/node_modules/.package-lock.json
# The AsyncAPI parser the tests validate docs/asyncapi.json with.
ASYNCAPI_DEPS := tools/asyncapi/node_modules/.package-lock.json
# The web console (services/console/web): its npm packages, then its build (typechecked by
# tsc, formatting checked by prettier, bundled by Vite into dist/, which the console server
# serves), redone when a source changes.
CONSOLE_WEB := services/console/web
CONSOLE_DEPS := $(CONSOLE_WEB)/node_modules/.package-lock.json
CONSOLE_BUILD := $(CONSOLE_WEB)/dist/index.html
CONSOLE_SOURCES := $(shell find $(CONSOLE_WEB)/src $(CONSOLE_WEB)/e2e -type f) \
	$(addprefix $(CONSOLE_WEB)/,index.html vite.config.ts tsconfig.json package-lock.json .prettierrc.json)
# The worker's launcher (see its source), next to the worker's Python in the virtualenv.
LAUNCHER := .venv/bin/idp-sandbox-exec
LAUNCHER_SOURCE := services/executor-worker/launcher/idp-sandbox-exec.c
CC ?= cc
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run test test-fast install lint bench

run: install
	.venv/bin/python scripts/run_platform.py

test: lint
	scripts/ensure-backing-services.sh
	$(UV) run --frozen pytest

# The inner loop: unit and integration tests, without the end-to-end tier (marked slow),
# in one process (-n 0): mostly CPU, they gain nothing from the workers the full suite uses.
test-fast: install
	scripts/ensure-backing-services.sh
	$(UV) run --frozen pytest -m "not slow" -n 0

# Bytecode compiled here, for the packages and for the workspace's own sources (installed
# editable, so uv leaves them out): with PYTHONDONTWRITEBYTECODE set, as it often is in
# containers, Python otherwise compiles every module it imports on every start (measured:
# half of each service's startup CPU). compileall only redoes the files that changed.
install: $(UV) $(SQS_DEPS) $(ASYNCAPI_DEPS) $(CONSOLE_BUILD)
	$(UV) sync --frozen --quiet --compile-bytecode
	.venv/bin/python -m compileall -q libs/*/src services/*/src clients/*/src scripts
	$(MAKE) --no-print-directory $(LAUNCHER)

$(LAUNCHER): $(LAUNCHER_SOURCE)
	$(CC) -O2 -Wall -Wextra -Werror -static -o $@ $<

# Lint, formatting and types (mypy strict, as pyproject configures it), before any test.
lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy libs services clients scripts tests

# Both backends and the Celery peer by default; e.g. `make bench ARGS="--backends postgres
# --no-peer"` (scripts/bench.py --help lists the options).
bench: install
	.venv/bin/python scripts/bench.py $(ARGS)

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(ASYNCAPI_DEPS): tools/asyncapi/package.json tools/asyncapi/package-lock.json
	npm ci --prefix tools/asyncapi --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_DEPS): $(CONSOLE_WEB)/package.json $(CONSOLE_WEB)/package-lock.json
	npm ci --prefix $(CONSOLE_WEB) --no-audit --no-fund --loglevel=error
	touch $@

$(CONSOLE_BUILD): $(CONSOLE_DEPS) $(CONSOLE_SOURCES)
	npm run --prefix $(CONSOLE_WEB) --silent build

$(SQS_DEPS): tools/local-sqs/package.json tools/local-sqs/package-lock.json tools/local-sqs/patches/*.patch
	npm ci --prefix tools/local-sqs --no-audit --no-fund --loglevel=error
	touch $@
