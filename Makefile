# Two commands a newcomer needs: `make demo` and `make test`. Both work on a fresh machine, and every
# install comes from the committed lock (uv.lock): `make lock` refreshes it, as a commit of its own.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# uv itself, pinned with its hash (requirements/uv.txt), is the only thing pip installs.
UV := $(BIN)/uv
# --locked: refuse to install when pyproject.toml and uv.lock disagree (CI fails there too).
# --inexact: leave what is installed alone (uv itself; the test extras when the demo runs after a test).
SYNC := UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --locked --inexact --quiet
RUNTIME_STAMP := $(VENV)/.runtime-installed
TEST_STAMP := $(VENV)/.test-installed
PYTEST_WORKERS ?= 2

.PHONY: demo test lint lock lock-check serve-check serve bench clean

$(UV): requirements/uv.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --disable-pip-version-check --require-hashes --no-deps -r requirements/uv.txt
	touch $(UV)

$(RUNTIME_STAMP): $(UV) pyproject.toml uv.lock  ## runtime dependencies only: what the demo and production run
	$(SYNC)
	touch $@

$(TEST_STAMP): $(RUNTIME_STAMP)  ## plus the test extras (Synapse, Tryton, Playwright, schemathesis…)
	$(SYNC) --extra test
	touch $@

demo: $(RUNTIME_STAMP)  ## the demo on the embedded default: SQLite, in-memory layer, in-process tasks
ifeq ($(ERP),tryton)
	@$(MAKE) --no-print-directory $(TEST_STAMP)  # trytond is a test extra
	DEV_INBOX_ENABLED=1 DEMO_CONSOLE=1 $(BIN)/python manage.py demo_tryton --port $(PORT)  # on a real local trytond (README)
else
	DEV_INBOX_ENABLED=1 DEMO_ERP_ENABLED=1 DEMO_CONSOLE=1 $(BIN)/python manage.py demo --port $(PORT)
endif

test: $(TEST_STAMP)  ## the whole suite; CI sets DATABASE_URL, REDIS_URL and REQUIRE_SERVICES=1
	@./scripts/install-chromium
	@test -d tests/oidc_provider/node_modules || npm ci --prefix tests/oidc_provider  # the OIDC test provider
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# requirements.txt: the runtime part of uv.lock with its hashes, for deployments that install with
# plain pip (`pip install --require-hashes -r requirements.txt`, then the project with --no-deps).
EXPORT := $(UV) export --frozen --no-emit-project --no-header --format requirements-txt --quiet

lock: $(UV)  ## re-resolve uv.lock from pyproject.toml (an upgrade: commit it alone, after `make test`)
	$(UV) lock $(LOCK_ARGS)
	$(EXPORT) -o requirements.txt

lock-check: $(UV)  ## fails when pyproject.toml, uv.lock and requirements.txt disagree
	$(UV) lock --check
	$(EXPORT) | diff -q - requirements.txt >/dev/null || { echo "requirements.txt is not uv.lock's export: run make lock"; exit 1; }

serve: $(RUNTIME_STAMP)  ## the production shape (README "Operations"): needs DATABASE_URL and REDIS_URL
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0  # whitenoise serves the compressed copies
	$(BIN)/python -m portal.serve  # SERVE_PORT, DAPHNE_PROCESSES, CELERY_WORKERS, CELERY_BEAT…

bench: $(TEST_STAMP)  ## one table: intake → IM send vs Node-RED, decision stages, fan-out, bot, memory
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-intake: $(TEST_STAMP)  ## the intake alone on one Daphne: events/s, answer p50/p99, CPU per event; the /healthz floor
	$(BIN)/python bench/intake.py $(BENCH_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var staticfiles
