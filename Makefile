# Two commands on a fresh machine: `make run` serves, `make test` tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format migrate bootstrap clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.runtime-installed: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $(VENV)/.runtime-installed $@

## run: install, write .env, migrate, train if needed, create the demo client, serve
run: $(VENV)/.runtime-installed
	$(PY) scripts/bootstrap.py --url http://$(HOST):$(PORT)
	$(PY) -m uvicorn app.main:app --host $(HOST) --port $(PORT)

## test: install dev requirements and run the whole suite
test: $(VENV)/.dev-installed
	$(PY) -m pytest

## lint: ruff, formatting and mypy
lint: $(VENV)/.dev-installed
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

## format: rewrite files in the house format
format: $(VENV)/.dev-installed
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

## migrate: apply database migrations to DATABASE_URL
migrate: $(VENV)/.runtime-installed
	$(PY) -m alembic upgrade head

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
