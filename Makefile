# AI Secretary. `make run` and `make test` are all a newcomer needs; both build .venv first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TEST_POSTGRES_URL ?= postgres://root@127.0.0.1:5432/postgres
PYTEST_ARGS ?=

.PHONY: install run test test-sqlite test-postgres bench mutation docs lint lock clean

# Installs the lock file: every package pinned, every download checked against its hash.
$(VENV)/.installed: requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements/lock.txt
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) manage.py initdb
	$(PY) manage.py runserver

# The whole suite on SQLite and again on PostgreSQL (skipped with a message when no server
# answers at TEST_POSTGRES_URL, a failure with REQUIRE_POSTGRES=1), the two passes at once:
# much of a pass waits on subprocesses, servers and the database, so on 2 cores the two together
# take about two thirds of one after the other. Each pass's output is printed whole when it ends;
# TEST_JOBS=1 runs them one after the other with live output.
TEST_JOBS ?= 2
test: install
	$(MAKE) --no-print-directory -j$(TEST_JOBS) --output-sync=target test-sqlite test-postgres

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

# Re-pin requirements/lock.txt after editing base.txt or dev.txt (pip-tools in a throwaway venv).
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet pip-tools
	.venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --no-header \
		--no-emit-index-url --no-emit-find-links --output-file requirements/lock.body requirements/dev.txt
	{ sed -n '1,3p' requirements/lock.txt; echo; cat requirements/lock.body; } > requirements/lock.new
	mv requirements/lock.new requirements/lock.txt && rm -f requirements/lock.body
	rm -rf .venv-lock

clean:
	rm -rf $(VENV) .venv-lock var .pytest_cache
