"""Initialisation through a real PgBouncer, in transaction and in session pooling mode.

The pool holds 5 server connections; 16 processes start at once. Whatever the mode, every
process must exit 0, every migration and seed row must exist once and no lock may be left.
"""

import subprocess
import sys

import pytest

from tests.support.databases import ROOT, manage, subprocess_env

pytestmark = [pytest.mark.slow, pytest.mark.postgresql_only]
PROCESSES = 16


def assert_initialised_once(db):
    assert db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE slug = 'system'") == 1
    assert db.scalar("SELECT COUNT(*) FROM accounts_role") == 3
    assert db.scalar("SELECT COUNT(*) FROM accounts_user") == 1
    migrations = db.scalar("SELECT COUNT(*) FROM django_migrations")
    assert db.scalar("SELECT COUNT(DISTINCT (app, name)) FROM django_migrations") == migrations
    assert db.query("SELECT app_label, model FROM django_content_type GROUP BY app_label, model HAVING COUNT(*) > 1") == []
    assert_no_lock_left(db)


def assert_no_lock_left(db):
    # This database's advisory locks only: the server is shared with other runs.
    assert db.query("SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())") == []
    if "dbinit_lease" in db.tables():
        assert db.query("SELECT host, pid FROM dbinit_lease") == []


def run_concurrently(args, db, count=PROCESSES, env=None):
    env = subprocess_env(db, {"DBINIT_CONNECT_TIMEOUT": "30", **(env or {})})
    procs = [subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(count)]
    return [(p.wait(timeout=600), *p.communicate()) for p in procs]


def test_sixteen_initdb_through_pgbouncer(pgbouncer, existing_db):
    pooled = pgbouncer.via(existing_db)
    results = run_concurrently(["initdb", "--noinput"], pooled)
    failures = [out + err for code, out, err in results if code != 0]
    assert [code for code, _, _ in results] == [0] * PROCESSES, failures[:2]
    if existing_db.state == "empty":
        assert sum("applied " in out and "migration(s)" in out for _, out, _ in results) == 1
        assert sum("created admin:" in out for _, out, _ in results) == 1
    assert_initialised_once(existing_db)
    health = manage("dbhealth", db=pooled)
    assert health.returncode == 0, health.stdout + health.stderr


@pytest.mark.parametrize("through", ["direct", "pgbouncer"])
def test_initialisation_connections_are_named_after_host_and_process(initialized_db, pgbouncer, through):
    """pg_stat_activity (and PgBouncer) show dbinit@HOST:PID/initdb; the server records it as the admin is seeded."""
    initialized_db.execute(
        "DELETE FROM accounts_user",
        "CREATE TABLE seen_by (application_name text)",
        "CREATE FUNCTION remember() RETURNS trigger AS $$ BEGIN "
        "INSERT INTO seen_by VALUES (current_setting('application_name')); RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER remember BEFORE INSERT ON accounts_user FOR EACH ROW EXECUTE FUNCTION remember()",
    )
    db = pgbouncer.via(initialized_db) if through == "pgbouncer" else initialized_db
    proc = manage("initdb", "--noinput", db=db)
    assert proc.returncode == 0, proc.stderr
    [(name,)] = initialized_db.query("SELECT application_name FROM seen_by")
    host_pid, purpose = name.removeprefix("dbinit@").rsplit("/", 1)
    assert name.startswith("dbinit@") and purpose == "initdb"
    assert host_pid.rsplit(":", 1)[1].isdigit()
