"""Shared fixtures.

Each pytest run targets one engine: the engine of ``DATABASE_URL`` (SQLite by
default; ``make test`` runs the suite again with PostgreSQL). In-process tests
use pytest-django's isolated ``test_`` database; subprocess tests get a
:class:`~tests.support.databases.ScratchDatabase` of the same engine, created fresh.
"""

from __future__ import annotations

import os
import shutil
import uuid

import pytest
from django.conf import settings

from tests.support.databases import (
    POPULATED_USERS,
    ScratchDatabase,
    drop_databases_named,
    manage,
    postgres_reachable,
    postgres_server_url,
    python,
)
from tests.support.pgbouncer import PgBouncer, pgbouncer_binary
from tests.support.standby import Standby, allow_replication, replication_problem

ENGINE = "postgresql" if "postgresql" in settings.DATABASES["default"]["ENGINE"] else "sqlite"


def pytest_report_header(config):
    return f"dbinit test engine: {ENGINE} ({'DATABASE_URL' if os.environ.get('DATABASE_URL') else 'default SQLite file'})"


def pytest_collection_modifyitems(config, items):
    if ENGINE == "postgresql":
        why = postgres_reachable(postgres_server_url()) or postgres_reachable(os.environ.get("DATABASE_URL"))
        if why:
            message = f"PostgreSQL not reachable at {postgres_server_url()}: {why}"
            if os.environ.get("REQUIRE_POSTGRES") == "1":
                raise pytest.UsageError(message + " (REQUIRE_POSTGRES=1 makes this a failure)")
            config.issue_config_time_warning(pytest.PytestWarning(message + "; PostgreSQL tests skipped"), 2)
            skip = pytest.mark.skip(reason=message)
            for item in items:
                item.add_marker(skip)
            return
    for item in items:
        if ENGINE == "sqlite" and item.get_closest_marker("postgresql_only"):
            item.add_marker(pytest.mark.skip(reason="PostgreSQL-only behaviour; runs in the PostgreSQL pass"))
        if ENGINE == "postgresql" and item.get_closest_marker("sqlite_only"):
            item.add_marker(pytest.mark.skip(reason="SQLite-only behaviour; runs in the SQLite pass"))


@pytest.fixture(scope="session")
def run_templates(tmp_path_factory):
    """The templates test databases are made from (``DBINIT_TEMPLATE_*``, for a subprocess's env too).

    SQLite: this run's own, in its temporary folder: built from the committed snapshot in
    well under a second. PostgreSQL: the server's templates under the default prefix, kept per
    migration-set fingerprint as initdb keeps them in development: building one (two
    ``CREATE DATABASE`` and the snapshot) costs more than migrating this project's 26
    migrations, so only a template that outlives the run makes the pass faster.
    """
    env = {"DBINIT_TEMPLATES": "on", "DBINIT_TEMPLATE_DIR": str(tmp_path_factory.mktemp("run-templates"))}
    if ENGINE == "postgresql":
        env["DBINIT_TEMPLATE_PREFIX"] = settings.DBINIT_TEMPLATE_PREFIX
    return env


@pytest.fixture(scope="session")
def django_db_keepdb() -> bool:
    """Django's test set-up reuses the test database ``django_db_modify_db_settings`` made from the template
    (its ``migrate`` still runs, and finds nothing to apply); that fixture drops it at the end."""
    return True


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory, run_templates,
                                 django_db_blocker):
    """pytest-django's test database, named per run (two runs on one server never share it) and made
    from this run's verified template by dbinit instead of by replaying every migration.

    SQLite: a real file (what users get, not SQLite's in-memory default) in this run's
    temporary folder, which exists on a fresh clone whatever DATABASE_URL says.
    """
    from django.test import override_settings

    from dbinit import templates

    test = settings.DATABASES["default"].setdefault("TEST", {})
    if ENGINE == "sqlite":
        test["NAME"] = str(tmp_path_factory.mktemp("testdb") / "test_db.sqlite3")
    else:
        test["NAME"] = f"test_aisecretary_{uuid.uuid4().hex[:12]}"
    if ENGINE == "sqlite" or not postgres_reachable(postgres_server_url()):
        with override_settings(**run_templates), django_db_blocker.unblock():
            # Not made (a failing template)? Django's set-up then creates and migrates it as before.
            templates.create_test_database(test["NAME"])
    yield
    if ENGINE == "postgresql" and not postgres_reachable(postgres_server_url()):
        ScratchDatabase.named(test["NAME"]).drop()


@pytest.fixture(scope="session")
def engine() -> str:
    return ENGINE


@pytest.fixture
def fresh_db(tmp_path):
    """A database that does not exist yet (no file / no database on the server)."""
    db = ScratchDatabase.new(ENGINE, tmp_path)
    yield db
    db.drop()


@pytest.fixture(params=["empty", "initialised"])
def existing_db(request, fresh_db, template_db):
    """A database that exists, in each state a server may start on: ``empty`` (created, nothing in
    it) or ``initialised`` (a copy of ``template_db``); ``existing_db.state`` says which."""
    if request.param == "empty":
        fresh_db.create_empty()
    else:
        fresh_db.clone_from(template_db)
    fresh_db.state = request.param
    return fresh_db


@pytest.fixture(scope="session")
def template_db(tmp_path_factory, run_templates):
    """One database initialised by initdb, copied by ``initialized_db`` (faster than initdb each time).

    initdb makes it from this run's template (tests/test_templates.py proves that is the database
    the migrations make); the tests of initdb's own migrate path use ``fresh_db``.
    """
    db = ScratchDatabase.new(ENGINE, tmp_path_factory.mktemp("template"))
    result = manage("initdb", "--noinput", db=db, env=run_templates)
    assert result.returncode == 0, result.stdout + result.stderr
    yield db
    db.drop()


def _copy_of(template, folder):
    db = ScratchDatabase.new(ENGINE, folder)
    db.clone_from(template)
    yield db
    db.drop()


@pytest.fixture
def initialized_db(template_db, tmp_path):
    """A fresh copy of a fully initialised database (migrated, seeded, admin present)."""
    yield from _copy_of(template_db, tmp_path)


@pytest.fixture(scope="session")
def populated_template(template_db, tmp_path_factory):
    """An initialised database where a tenant holds many users (made with the factories)."""
    for db in _copy_of(template_db, tmp_path_factory.mktemp("populated")):
        # AISECRETARY_ENV=testing: the fast password hasher for the factories' users.
        proc = python("tests/probes/populate.py", str(POPULATED_USERS), db=db, env={"AISECRETARY_ENV": "testing"})
        assert proc.returncode == 0, proc.stderr
        yield db


@pytest.fixture
def populated_db(populated_template, tmp_path):
    """A fresh copy of an initialised database holding a tenant with many users."""
    yield from _copy_of(populated_template, tmp_path)


@pytest.fixture
def templates(tmp_path, engine):
    """Template settings of this test alone; its template databases are dropped afterwards."""
    prefix = f"dbinit_tt_{uuid.uuid4().hex[:8]}_"
    # No snapshot: templates are built by migrating (tests/test_snapshots.py adds one).
    env = {"DBINIT_TEMPLATES": "on", "DBINIT_TEMPLATE_DIR": str(tmp_path / "templates"),
           "DBINIT_TEMPLATE_PREFIX": prefix, "DBINIT_SNAPSHOT_DIR": str(tmp_path / "no-snapshots")}
    yield env
    if engine == "postgresql":
        drop_databases_named(postgres_server_url(), prefix)


@pytest.fixture
def chromium_path():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        if os.environ.get("REQUIRE_E2E") == "1":
            pytest.fail("Chromium is not installed and REQUIRE_E2E=1")
        pytest.skip("Chromium is not installed (apt-get install chromium); end-to-end test skipped")
    return path


# --- third-party apps (tests.settings.thirdparty) ------------------------------------------------
THIRDPARTY_ENV = {"DJANGO_SETTINGS_MODULE": "tests.settings.thirdparty"}


@pytest.fixture(scope="session")
def thirdparty_template(tmp_path_factory):
    """A database initialised by initdb with the third-party apps (~290 migrations), rows in their tables.

    Made once per session (migrating takes 20 to 60 s) and copied per test by ``thirdparty_db``.
    """
    db = ScratchDatabase.new(ENGINE, tmp_path_factory.mktemp("thirdparty"))
    db.env.update(THIRDPARTY_ENV)
    result = manage("initdb", "--noinput", db=db, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = python("tests/probes/thirdparty_rows.py", db=db, env={"AISECRETARY_ENV": "testing"})
    assert rows.returncode == 0, rows.stderr
    yield db
    db.drop()


@pytest.fixture
def thirdparty_db(thirdparty_template, tmp_path):
    """A fresh copy of the third-party template database (run manage.py on it with its own ``env``)."""
    for db in _copy_of(thirdparty_template, tmp_path):
        db.env.update(THIRDPARTY_ENV)
        yield db
@pytest.fixture(scope="session", params=["transaction", "session"])
def pgbouncer(request):
    """A real PgBouncer (pool of 5) in front of the test server, once per pooling mode."""
    if ENGINE != "postgresql":
        pytest.skip("PgBouncer sits in front of PostgreSQL; runs in the PostgreSQL pass")
    if pgbouncer_binary() is None:
        message = "PgBouncer is not installed (apt-get install pgbouncer)"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " and REQUIRE_POSTGRES=1")
        pytest.skip(message + "; PgBouncer tests skipped")
    bouncer = PgBouncer(request.param).start()
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="session")
def standby():
    """A real streaming standby of the test server (``pg_basebackup -R``), once per session.

    Made when the first test asking for it runs (about 15 s: it copies the whole test cluster),
    stopped and removed at the end of the session. Replay is running between tests.
    """
    if ENGINE != "postgresql":
        pytest.skip("A streaming standby is PostgreSQL's; runs in the PostgreSQL pass")
    server = postgres_server_url()
    problem = None
    try:
        allow_replication(server)
        problem = replication_problem(server)
    except OSError as exc:  # not allowed to change the server's pg_hba.conf
        problem = f"replication connections are refused and pg_hba.conf cannot be changed: {exc}"
    if problem:
        message = f"No streaming standby of {server}: {problem}"
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " and REQUIRE_POSTGRES=1")
        pytest.skip(message + "; standby tests skipped")
    server_standby = Standby(server).start()
    yield server_standby
    server_standby.stop()
