# Two commands a new user needs: `make demo` and `make test`. Each sets up .venv itself.
VENV := .venv
BIN  := $(VENV)/bin

.PHONY: demo test lint typecheck pytest serve bench clean

$(VENV)/.installed: pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV)

demo: $(VENV)/.installed
	$(BIN)/python scripts/demo.py

test: lint typecheck pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Not part of the tests: prints one comparison table (takes about 10 minutes; see README).
bench: $(VENV)/.installed
	$(BIN)/python -c "import airflow.providers.http" 2>/dev/null || \
	  $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[bench]' 2>/dev/null || \
	  $(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python scripts/bench.py $(BENCH_ARGS)

serve: $(VENV)/.installed
	$(BIN)/python -m airflow_provider_stop.testing serve

clean:
	rm -rf $(VENV) .demo .bench
