# Two commands a newcomer needs: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve-check bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)  ## the demo on the embedded default: SQLite, in-memory layer, in-process tasks
	DEV_INBOX_ENABLED=1 DEMO_ERP_ENABLED=1 $(BIN)/python manage.py demo --port $(PORT)

test: $(STAMP)  ## the whole suite; CI sets DATABASE_URL, REDIS_URL and REQUIRE_SERVICES=1
	@command -v chromium >/dev/null 2>&1 || ./scripts/install-chromium
	@test -d tests/oidc_provider/node_modules || npm ci --prefix tests/oidc_provider  # the OIDC test provider
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)  ## speed and memory of the loop, as a table (DATABASE_URL/REDIS_URL honoured)
	$(BIN)/python bench/loop.py

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var staticfiles
