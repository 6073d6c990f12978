# Two commands a newcomer needs: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test lint serve-check serve bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)  ## the demo on the embedded default: SQLite, in-memory layer, in-process tasks
ifeq ($(ERP),tryton)
	DEV_INBOX_ENABLED=1 $(BIN)/python manage.py demo_tryton --port $(PORT)  # on a real local trytond (README)
else
	DEV_INBOX_ENABLED=1 DEMO_ERP_ENABLED=1 $(BIN)/python manage.py demo --port $(PORT)
endif

test: $(STAMP)  ## the whole suite; CI sets DATABASE_URL, REDIS_URL and REQUIRE_SERVICES=1
	@command -v chromium >/dev/null 2>&1 || ./scripts/install-chromium
	@test -d tests/oidc_provider/node_modules || npm ci --prefix tests/oidc_provider  # the OIDC test provider
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

serve: $(STAMP)  ## the production shape (README "Operations"): needs DATABASE_URL and REDIS_URL
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0  # whitenoise serves the compressed copies
	$(BIN)/python -m portal.serve  # SERVE_PORT, DAPHNE_PROCESSES, CELERY_WORKERS, CELERY_BEAT…

bench: $(STAMP)  ## one table: intake → IM send vs Node-RED, decision stages, fan-out, bot, memory
	$(BIN)/python bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var staticfiles
