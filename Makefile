# Two commands a new user needs: `make demo` and `make test`. Each sets up .venv itself.
VENV := .venv
BIN  := $(VENV)/bin

.PHONY: demo test ci lint typecheck pytest serve bench e2e e2e-extended e2e-production matrix docs clean

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV)

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

# The README's test command: lint, types, pytest on the newest Airflow, a real deployment (make e2e).
test: lint typecheck pytest e2e

# What CI runs (.ci/run): the test command, the docs, the longer and the production-shaped deployments,
# then every other supported Airflow minor and Python.
ci: test docs e2e-extended e2e-production matrix

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# Two worker processes (pytest-xdist; each has its own Airflow home and metadata DB): PYTEST_WORKERS=0 runs
# the suite in one process.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.installed
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Not part of the tests: prints one comparison table (takes about 10 minutes; see docs/performance.md).
bench: $(VENV)/.installed
	$(BIN)/python -c "import airflow.providers.http" 2>/dev/null || \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[bench]' 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

# The docs site (mkdocs.yml, docs/) into site/: strict, so a warning (a broken link or anchor, a missing
# example include, a docstring the API reference cannot read) fails it; then screenshots of two pages in
# headless Chromium into site/screenshots/ (skipped with a message where chromium cannot be had).
docs: $(VENV)/.installed
	$(BIN)/python -c "import mkdocs, material, mkdocstrings_handlers.python" 2>/dev/null || \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[docs]' 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet -e '.[docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict
	$(BIN)/python scripts/docs_screenshots.py site

# The core real deployment (api-server, scheduler, dag-processor, triggerer; LocalExecutor, sqlite) in a
# temporary AIRFLOW_HOME, against the emulators: the connection forms, every example DAG, the fast-stop DAG
# 20 times, the extra links, restarts, a secret sweep (docs/development/proof-suites.md). A pytest session
# of its own (e2e/, not in testpaths). E2E_ARGS: pytest options, e.g. `-k fast_stop --runs 50`,
# `--config section.option=value`, `--code-root DIR`, or test modules (then only those).
E2E_CI_ONLY := e2e/test_production.py e2e/test_semantics.py e2e/test_kill.py e2e/test_routes.py
e2e: $(VENV)/.installed
	$(BIN)/python -m pytest $(if $(filter e2e/%,$(E2E_ARGS)),,e2e $(addprefix --ignore=,$(E2E_CI_ONLY))) \
	  -p no:randomly --timeout 1200 -v --tb=short -o console_output_style=times $(E2E_ARGS)

# The longer scenarios, on a deployment of their own (CI runs them after `make test`): Airflow's semantics
# (execution_timeout, a retry after a killed worker, 40 mapped instances), a user's task killed, which
# stop route fires on which event; with the examples and the secret sweep, so their runs are swept too.
e2e-extended: $(VENV)/.installed
	$(BIN)/python -m pytest e2e/test_examples.py e2e/test_semantics.py e2e/test_kill.py e2e/test_routes.py \
	  e2e/test_secrets.py -p no:randomly --timeout 1200 -v --tb=short -o console_output_style=times $(E2E_ARGS)

# The shared rate limit in a production-shaped deployment (PostgreSQL, CeleryExecutor with Redis, two
# triggerers; Debian's postgresql and redis-server, installed when missing): 40 deferrable stops of one
# Amperity tenant, with and without [stop_provider] rate_limit_storage (docs/rate-limits.md). CI runs it
# after `make test` (.ci/run); a few minutes.
e2e-production: $(VENV)/.installed
	$(BIN)/python -m pytest e2e/test_production.py -p no:randomly --timeout 900 -v --tb=short \
	  -o console_output_style=times $(E2E_ARGS)

# Every supported (Airflow, Python) pair of scripts/airflow-releases.txt in its own environment under
# .matrix/, from the built wheel: imports, `airflow providers list`, and `pytest -m airflow`.
# MATRIX_ARGS: e.g. `--only 3.1`, `--jobs 1`, `-- -x`.
matrix: $(VENV)/.installed
	$(BIN)/python scripts/matrix.py $(MATRIX_ARGS)

serve: $(VENV)/.installed
	$(BIN)/python -m airflow_provider_stop.testing serve

clean:
	rm -rf $(VENV) .demo .bench .e2e .matrix site
