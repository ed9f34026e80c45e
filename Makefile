# Partnerbot: make run | make test | make install | make migrate
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# The suite runs on one pytest-xdist worker per CPU; each test file stays on one worker, so a module's shared
# fake Slack or app is built once. Files are handed out in collection order (tests/conftest.py puts the
# longest first), not largest-count first. TEST_WORKERS=0 runs it in this one process.
TEST_WORKERS ?= auto

.PHONY: run test install install-dev migrate lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEVSTAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(STAMP)

install: $(STAMP)

install-dev: $(DEVSTAMP)

migrate: $(STAMP)
	$(BIN)/python -m alembic upgrade head

run: $(STAMP)
	$(BIN)/python -m alembic upgrade head
	$(BIN)/python bot.py

lint: $(DEVSTAMP)
	$(BIN)/ruff check .

test: $(DEVSTAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
