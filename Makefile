# The two entry points a newcomer needs: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
E2E := tests/e2e

.PHONY: run test shell bench-dispatch clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(VENV)/.installed-run

$(E2E)/node_modules/.package-lock.json: $(E2E)/package.json $(E2E)/package-lock.json
	cd $(E2E) && npm ci --no-audit --no-fund --loglevel=error

# First start writes a private DATA_KEY into .env; the bot refuses to start without BOT_TOKEN.
.env: | $(VENV)/.installed-run
	printf 'BOT_TOKEN=\nDATA_KEY=%s\n' "$$($(BIN)/cadrebot keygen)" > .env
	@echo "wrote .env with a new DATA_KEY; put your BOT_TOKEN from @BotFather into it"

run: $(VENV)/.installed-run .env
	$(BIN)/cadrebot db upgrade
	$(BIN)/cadrebot run

test: $(VENV)/.installed-test $(E2E)/node_modules/.package-lock.json
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy bot handlers storage templates
	$(BIN)/pytest -q

# Chat with the real handlers in the terminal, no token: `make shell ARGS="--as mentor"`.
shell: $(VENV)/.installed-run
	$(BIN)/cadrebot shell $(ARGS)

bench-dispatch: $(VENV)/.installed-test
	$(BIN)/python -m bench.dispatch

clean:
	rm -rf $(VENV) $(E2E)/node_modules .pytest_cache .mypy_cache .ruff_cache
