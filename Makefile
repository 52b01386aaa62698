# AI Secretary. `make run` and `make test` are all a newcomer needs; both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TEST_POSTGRES_URL ?= postgres://root@127.0.0.1:5432/postgres
PYTEST_ARGS ?=

.PHONY: install run test test-sqlite test-postgres bench mutation docs lint clean

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py initdb
	$(PY) manage.py runserver

# The whole suite on SQLite, then again on PostgreSQL (skipped with a message when no
# server answers at TEST_POSTGRES_URL, a failure with REQUIRE_POSTGRES=1).
test: test-sqlite test-postgres

test-sqlite: install
	env -u DATABASE_URL AISECRETARY_ENV=testing $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: install
	AISECRETARY_ENV=testing DATABASE_URL=$(TEST_POSTGRES_URL) TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) \
		$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) bench/bench.py

# Break each promise in tools/mutation.py one at a time; its tests must fail (SQLite, then
# PostgreSQL at TEST_POSTGRES_URL). Not part of `make test`: several minutes.
mutation: install
	TEST_POSTGRES_URL=$(TEST_POSTGRES_URL) $(PY) tools/mutation.py

docs: install
	$(PY) manage.py dbinit_docs > docs/error-codes.md

lint: install
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache
