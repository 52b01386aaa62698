"""Every alias of a multi-database project (issue 14): ``analytics`` routed to its own database,
``replica`` a read-only copy of ``default`` (TEST MIRROR, reads routed there, nothing migrated;
on PostgreSQL also read-only at the server). initdb, dbhealth, dbrepair, resetdb, start-up and
/health/ on each alias: the routers are obeyed, no forbidden table is created, and no write
ever reaches the replica (its row counts and django_migrations are compared before and after).
On PostgreSQL the replica is also a real streaming standby (tests/support/standby.py): the
pg_is_in_recovery() path, and its replication lag (dbinit.I029, W074 over the limit)."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.databases import manage, python
from tests.support.multidb import MultiDatabase

HEALTH_TOKEN = "multidb-health-token-" + "0123456789abcdef" * 2
HEALTH_DETAILS = {"DBINIT_HEALTH_TOKEN": HEALTH_TOKEN, "HEALTH_PROBE_TOKEN": HEALTH_TOKEN}

ANALYTICS_TABLES = {"analytics_pageview", "django_migrations"}


@pytest.fixture
def multi(engine, template_db, tmp_path):
    """default and analytics not created yet; replica a read-only copy of an initialised database."""
    m = MultiDatabase.new(engine, tmp_path)
    m.make_replica_of(template_db)
    yield m
    m.drop()


@pytest.fixture(scope="session")
def multi_template(engine, template_db, tmp_path_factory):
    m = MultiDatabase.new(engine, tmp_path_factory.mktemp("multidb"))
    m.make_replica_of(template_db)
    proc = manage("initdb", "--all-databases", "--noinput", env=m.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield m
    m.drop()


@pytest.fixture
def initialized_multi(engine, multi_template, tmp_path):
    """default and analytics initialised by initdb --all-databases; replica a copy of that default."""
    m = MultiDatabase.new(engine, tmp_path)
    m.default.clone_from(multi_template.default)
    m.analytics.clone_from(multi_template.analytics)
    m.make_replica_of(multi_template.default)
    yield m
    m.drop()


def tables(db) -> set[str]:
    """The alias's own tables: not SQLite's sequence table, nor the PostgreSQL initialisation lock's
    lease table (``dbinit_lease``, created by the lock on every database initdb locks)."""
    return {t for t in db.tables() if t not in ("sqlite_sequence", "dbinit_lease")}


def ids(report: dict) -> list[str]:
    return [c["id"] for c in report["checks"]]


# --- initdb -----------------------------------------------------------------------------
def test_initdb_all_databases_initialises_each_writable_alias_in_order_and_skips_the_replica(multi):
    before = multi.snapshot(multi.replica)
    proc = manage("initdb", "--all-databases", "--noinput", "--format", "json", env=multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert [r["database"]["alias"] for r in out["databases"]] == ["default", "analytics"]
    assert list(out["skipped"]) == ["replica"]
    assert tables(multi.analytics) == ANALYTICS_TABLES
    assert "analytics_pageview" not in tables(multi.default)
    assert multi.default.scalar("SELECT COUNT(*) FROM accounts_user") == 1
    assert multi.default.scalar("SELECT COUNT(*) FROM dbinit_initializationrun") == 1
    assert multi.snapshot(multi.replica) == before
    # A second run has nothing to do on either alias and still writes nothing to the replica.
    proc = manage("initdb", "--all-databases", "--noinput", env=multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("Database already initialised: nothing to do") == 2
    assert "Database replica: skipped, read-only to dbinit" in proc.stdout
    assert multi.snapshot(multi.replica) == before


def test_initdb_on_the_analytics_alias_alone_completes_without_seed_models(multi):
    proc = manage("initdb", "--database", "analytics", "--noinput", "--plan", env=multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "would create the admin" not in proc.stdout  # nothing of the seed is planned there
    assert "seed          skipped" in proc.stdout
    for _ in range(2):  # the second run must not stumble on the lock or the history
        proc = manage("initdb", "--database", "analytics", "--noinput", env=multi.env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "seed          skipped" in proc.stdout
    assert "nothing to do" in proc.stdout
    assert manage("initdb", "--database", "analytics", "--no-seed", "--noinput", env=multi.env).returncode == 0
    assert tables(multi.analytics) == ANALYTICS_TABLES
    assert not multi.default.exists()  # another alias's database was not created


def test_initdb_refuses_the_replica_with_its_id(multi):
    before = multi.snapshot(multi.replica)
    for args in ([], ["--plan"], ["--no-seed"]):
        proc = manage("initdb", "--database", "replica", "--noinput", *args, env=multi.env)
        assert proc.returncode == 1
        assert "dbinit.E074" in proc.stderr and "mirrors 'default'" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert multi.snapshot(multi.replica) == before


@pytest.mark.postgresql_only
def test_a_read_only_server_is_refused_even_when_nothing_declares_it_a_replica(multi):
    before = multi.snapshot(multi.replica)
    env = {**multi.env, "MULTIDB_REPLICA_UNDECLARED": "1"}
    proc = manage("initdb", "--database", "replica", "--noinput", env=env)
    assert proc.returncode == 1, proc.stdout
    assert "dbinit.E074" in proc.stderr and "default_transaction_read_only = on" in proc.stderr
    proc = manage("dbrepair", "--database", "replica", "--noinput", env=env)
    assert proc.returncode == 1 and "dbinit.E074" in proc.stderr
    # Start-up asks the server too: the replica is only reached, default and analytics initialised.
    proc = python("-c", "import aisecretary.wsgi", env={**env, "DBINIT_STARTUP": "init"})
    assert proc.returncode == 0, proc.stderr
    assert "Database replica reachable (read-only, no lag to measure)" in proc.stderr
    assert multi.snapshot(multi.replica) == before


# --- dbhealth ----------------------------------------------------------------------------
def test_dbhealth_on_analytics_is_healthy_without_seed_or_history_there(initialized_multi):
    proc = manage("dbhealth", "--database", "analytics", "--format", "json", "--fail-level", "WARNING",
                  env=initialized_multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["check"]: c for c in report["checks"]}
    assert checks["seed"]["id"] == checks["history"]["id"] == checks["checksums"]["id"] == "dbinit.I019"
    assert "routed to default" in checks["history"]["message"]
    assert "dbinit.W062" not in ids(report) and "dbinit.I005" not in ids(report)
    # Django's own checks (what migrate runs) no longer repeat W062 for it.
    proc = manage("check", "--database", "analytics", env=initialized_multi.env)
    assert proc.returncode == 0 and "W062" not in proc.stdout + proc.stderr


def test_dbhealth_all_databases_checks_each_alias_and_the_replica_read_only(initialized_multi, engine):
    before = initialized_multi.snapshot(initialized_multi.replica)
    proc = manage("dbhealth", "--all-databases", "--format", "json", env=initialized_multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == "ok"
    assert [r["database"]["alias"] for r in out["databases"]] == ["default", "analytics", "replica"]
    replica = out["databases"][2]
    assert "dbinit.I020" in ids(replica)
    # A copy (SQLite, or a PostgreSQL database set read-only) is no standby: no lag, and no failure.
    lag = next(c for c in replica["checks"] if c["check"] == "replication")
    assert lag["id"] == "dbinit.I030" and lag["status"] == "info"
    assert ("SQLite has no replication" if engine == "sqlite" else "its server is not in recovery") in lag["message"]
    assert initialized_multi.snapshot(initialized_multi.replica) == before


def test_replica_problems_point_at_the_primary_never_at_initdb(multi, engine):
    multi.replica.drop() if engine == "postgresql" else multi.replica.path.unlink()
    proc = manage("dbhealth", "--database", "replica", "--format", "json", env=multi.env)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    missing = next(c for c in report["checks"] if c["check"] == "connectivity")
    assert missing["id"] == "dbinit.E075"
    assert "initdb" not in missing["hint"] and "default" in missing["hint"]
    assert not multi.replica.exists()  # a health check never creates it


@pytest.mark.sqlite_only
def test_replica_lag_hint_says_fix_the_primary(initialized_multi):
    replica = initialized_multi.replica
    replica.execute("DELETE FROM django_migrations WHERE app = 'sessions'")  # as if it lagged behind
    proc = manage("dbhealth", "--database", "replica", "--format", "json", env=initialized_multi.env)
    report = json.loads(proc.stdout)
    problems = [c for c in report["checks"] if c["status"] in ("warning", "error")]
    assert {c["id"] for c in problems} >= {"dbinit.W020"}
    for c in problems:
        assert "initdb" not in c["hint"] and "on default" in c["hint"]
    before = initialized_multi.snapshot(replica)
    proc = manage("dbrepair", "--database", "replica", "--noinput", env=initialized_multi.env)
    assert proc.returncode == 1 and "dbinit.E074" in proc.stderr
    assert initialized_multi.snapshot(replica) == before


# --- dbrepair ----------------------------------------------------------------------------
def test_dbrepair_on_default_recreates_only_what_the_router_allows_there(initialized_multi):
    db = initialized_multi.default
    expected = tables(db)
    db.drop_table("django_session")
    proc = manage("dbrepair", "--noinput", env=initialized_multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert tables(db) == expected  # django_session back, no analytics_pageview


def test_dbrepair_on_analytics_recreates_its_table_and_no_forbidden_one(initialized_multi):
    db = initialized_multi.analytics
    db.execute("INSERT INTO analytics_pageview (path, viewed_at) VALUES ('/a', '2026-01-01 00:00:00+00')")
    db.drop_column("analytics_pageview", "viewed_at")
    proc = manage("dbrepair", "--database", "analytics", "--noinput", env=initialized_multi.env)
    # auto_now_add gives existing rows no value (their creation time is unknown): dbrepair does not
    # invent one (issue 10) and says how to add the column by hand, on this alias only.
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "dbinit.E034 analytics_pageview.viewed_at" in proc.stdout
    assert tables(db) == ANALYTICS_TABLES
    assert db.scalar("SELECT COUNT(*) FROM analytics_pageview") == 1
    db.drop_table("analytics_pageview")
    proc = manage("dbrepair", "--database", "analytics", "--noinput", env=initialized_multi.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "created analytics_pageview" in proc.stdout
    assert tables(db) == ANALYTICS_TABLES


# --- resetdb -----------------------------------------------------------------------------
def test_resetdb_rebuilds_the_analytics_alias_and_leaves_default_alone(initialized_multi, tmp_path):
    default_before = initialized_multi.snapshot(initialized_multi.default)
    proc = manage("resetdb", "--database", "analytics", "--noinput",
                  env={**initialized_multi.env, "DBINIT_BACKUP_DIR": str(tmp_path / "bk")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert tables(initialized_multi.analytics) == ANALYTICS_TABLES
    assert initialized_multi.snapshot(initialized_multi.default) == default_before


def test_resetdb_refuses_the_replica_before_asking(initialized_multi):
    before = initialized_multi.snapshot(initialized_multi.replica)
    proc = manage("resetdb", "--database", "replica", env=initialized_multi.env, input="yes\n")
    assert proc.returncode == 1
    assert "dbinit.E074" in proc.stderr and "Type 'yes'" not in proc.stdout
    assert initialized_multi.replica.exists()
    assert initialized_multi.snapshot(initialized_multi.replica) == before


# --- start-up and /health/ ----------------------------------------------------------------------
@pytest.mark.slow
def test_wsgi_start_up_initialises_every_alias_and_only_reaches_the_replica(multi):
    before = multi.snapshot(multi.replica)
    proc = python("-c", "import aisecretary.wsgi", env={**multi.env, "DBINIT_STARTUP": "init"})
    assert proc.returncode == 0, proc.stderr
    for line in ("Database default initialised", "Database analytics initialised",
                 "Database replica reachable (read-only, no lag to measure)"):
        assert line in proc.stderr
    assert tables(multi.analytics) == ANALYTICS_TABLES
    assert multi.snapshot(multi.replica) == before


@pytest.mark.slow
def test_start_up_check_stops_on_a_missing_analytics_database(initialized_multi, engine):
    analytics = initialized_multi.analytics
    analytics.drop() if engine == "postgresql" else analytics.path.unlink()
    env = {**initialized_multi.env, "DBINIT_STARTUP": "check", "DBINIT_CONNECT_TIMEOUT": "1"}
    proc = python("-c", "import aisecretary.wsgi", env=env)
    assert proc.returncode == 3
    assert "dbinit.C00" in proc.stderr and "dbinit.E009" in proc.stderr and "Traceback" not in proc.stderr
    # Covering fewer aliases is a setting: with DBINIT_DATABASES=default it starts.
    proc = python("-c", "import aisecretary.wsgi", env={**env, "DBINIT_DATABASES": "default"})
    assert proc.returncode == 0, proc.stderr
    assert "Database analytics" not in proc.stderr


def test_start_up_refuses_an_unknown_alias_in_dbinit_databases(initialized_multi):
    env = {**initialized_multi.env, "DBINIT_STARTUP": "check", "DBINIT_DATABASES": "default,nope"}
    proc = python("-c", "import aisecretary.wsgi", env=env)
    assert proc.returncode == 3
    assert "dbinit.E005" in proc.stderr and "nope" in proc.stderr and "Traceback" not in proc.stderr


def test_health_endpoint_has_a_line_per_alias_and_fails_when_analytics_is_gone(initialized_multi, engine):
    before = initialized_multi.snapshot(initialized_multi.replica)
    env = {**initialized_multi.env, **HEALTH_DETAILS}  # the details need the token (test_health_access)
    proc = python("tests/probes/health.py", "?format=json", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["status"] == 200, out
    body = json.loads(out["body"])
    assert {"dbinit:configuration", "dbinit:database", "dbinit:migrations", "dbinit:seed",
            "dbinit:database:analytics", "dbinit:migrations:analytics", "dbinit:seed:analytics",
            "dbinit:database:replica"} == set(body)
    assert initialized_multi.snapshot(initialized_multi.replica) == before
    initialized_multi.analytics.drop_table("analytics_pageview")
    out = json.loads(python("tests/probes/health.py", "?format=json", env=env).stdout)
    assert out["status"] == 500
    assert "dbinit.E030" in json.loads(out["body"])["dbinit:migrations:analytics"]


def test_an_unknown_alias_in_dbinit_databases_is_a_configuration_error_everywhere(initialized_multi):
    env = {**initialized_multi.env, "DBINIT_DATABASES": "default,nope"}
    for args in (("check",), ("dbhealth", "--check", "configuration"), ("initdb", "--noinput")):
        proc = manage(*args, env=env)
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "dbinit.E005" in proc.stdout + proc.stderr and "nope" in proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
    # /health/ still answers (without the unknown alias) instead of failing to load its URLconf;
    # its configuration line fails, as start-up refuses the same setting.
    out = json.loads(python("tests/probes/health.py", "?format=json", env=env).stdout)
    checks = json.loads(out["body"])["checks"]
    assert out["status"] == 500 and checks["dbinit:configuration"] == "fail" and checks["dbinit:database"] == "ok"


# --- a streaming standby (pg_is_in_recovery()) --------------------------------------------------
# ``replica`` is default itself as a real standby serves it (tests/support/standby.py): a server in
# recovery, streaming from the test server. UNDECLARED drops the MIRROR and the replica router, so
# only the server can say that it is read-only.
UNDECLARED = {"MULTIDB_REPLICA_UNDECLARED": "1"}
IN_RECOVERY = "the server is a standby in recovery (pg_is_in_recovery())"


@pytest.fixture
def streaming(multi_template, standby, tmp_path):
    """default and analytics initialised; replica: that default on the session's standby, caught up."""
    m = MultiDatabase.streaming(multi_template, standby, tmp_path)
    yield m
    m.drop()


@pytest.fixture
def lagging(streaming, standby):
    """``streaming`` with replay paused on the standby after a write on default it has received."""
    standby.pause_replay()
    try:
        # A real transaction (its commit record is what replay would apply), no row count changed.
        streaming.default.execute("UPDATE tenants_tenant SET name = name")
        standby.receive()
        yield streaming
    finally:
        standby.resume_replay()
        standby.catch_up()


def settled(m, standby) -> tuple:
    """The replica's snapshot once the standby replayed all the primary wrote (a write that reached
    default through any path shows here too)."""
    standby.catch_up()
    return m.snapshot(m.replica)


@pytest.mark.postgresql_only
def test_every_writing_command_refuses_a_standby_in_recovery_with_its_id(streaming, standby):
    before = settled(streaming, standby)
    env = {**streaming.env, **UNDECLARED}
    for args in (["initdb"], ["initdb", "--plan"], ["dbrepair"], ["resetdb"]):
        proc = manage(*args, "--database", "replica", env=env, input="yes\n")
        assert proc.returncode == 1, (args, proc.stdout, proc.stderr)
        assert "dbinit.E074" in proc.stderr and IN_RECOVERY in proc.stderr, (args, proc.stderr)
        assert "E042" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
        assert "Type 'yes'" not in proc.stdout  # resetdb refuses before it asks
    assert settled(streaming, standby) == before


@pytest.mark.postgresql_only
def test_dbhealth_reports_a_standby_as_a_replica_with_its_lag(streaming, standby):
    before = settled(streaming, standby)
    proc = manage("dbhealth", "--database", "replica", "--format", "json", env={**streaming.env, **UNDECLARED})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"] if c["id"] != "dbinit.I001"}
    assert checks["connectivity"]["id"] == "dbinit.I020" and IN_RECOVERY in checks["connectivity"]["message"]
    lag = checks["replication"]
    assert lag["id"] == "dbinit.I029" and lag["status"] == "ok", lag
    assert "replication lag " in lag["message"] and "(DBINIT_REPLICA_MAX_LAG 30 s)" in lag["message"]
    # Declared (TEST MIRROR), the same standby: read-only for its settings, its lag measured all the same.
    proc = manage("dbhealth", "--all-databases", "--format", "json", env=streaming.env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    replica = json.loads(proc.stdout)["databases"][2]
    assert replica["database"]["alias"] == "replica"
    assert {"dbinit.I020", "dbinit.I029"} <= set(ids(replica))
    assert settled(streaming, standby) == before


# Twenty readings of the lag next to the age of the last replayed transaction, in one process.
IDLE_READINGS = """
import json, django
django.setup()
from django.db import connections
from dbinit import replication
readings = []
for _ in range(20):
    lag = replication.measure(connections["replica"])
    with connections["replica"].cursor() as cursor:
        cursor.execute("SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())")
        readings.append((lag.seconds, float(cursor.fetchone()[0])))
print(json.dumps(readings))
"""


@pytest.mark.postgresql_only
def test_a_caught_up_standby_has_no_lag_however_old_its_last_transaction(streaming, standby):
    """An idle primary writes no transaction: the last one the standby replayed grows old without the
    standby being behind. Other sessions may write to the shared server meanwhile (a reading taken
    while their WAL waits for replay is the age), so one caught-up reading of 0 among twenty is the proof."""
    standby.catch_up()
    proc = python("-c", IDLE_READINGS, env=streaming.env)
    assert proc.returncode == 0, proc.stderr
    readings = json.loads(proc.stdout)
    assert all(age > 0 for _, age in readings)  # the naive measure would never read 0
    assert any(seconds == 0.0 for seconds, _ in readings), readings


@pytest.mark.postgresql_only
def test_start_up_only_reaches_a_standby_and_measures_its_lag(streaming, standby):
    before = settled(streaming, standby)
    for mode in ("check", "init"):
        env = {**streaming.env, **UNDECLARED, "DBINIT_STARTUP": mode, "DBINIT_DATABASES": "replica",
               "DBINIT_LOG_LEVEL": "INFO"}
        proc = python("-c", "import aisecretary.wsgi", env=env)
        assert proc.returncode == 0, proc.stderr
        assert re.search(r"Database replica reachable \(read-only, lag \d+\.\d s\) in \d+ ms", proc.stderr), proc.stderr
        assert "Step " not in proc.stderr and "initialised" not in proc.stderr  # no migration, schema or seed step
    assert settled(streaming, standby) == before


@pytest.mark.postgresql_only
def test_health_endpoint_lists_a_standby_as_a_replica_only(streaming, standby):
    before = settled(streaming, standby)
    out = json.loads(python("tests/probes/health.py", "?format=json", env={**streaming.env, **HEALTH_DETAILS}).stdout)
    assert out["status"] == 200, out
    body = json.loads(out["body"])
    assert "dbinit:database:replica" in body and "dbinit:migrations:replica" not in body
    assert settled(streaming, standby) == before


@pytest.mark.postgresql_only
def test_a_standby_over_the_lag_limit_is_a_warning_that_stops_nothing(lagging, standby):
    before = lagging.snapshot(lagging.replica)
    env = {**lagging.env, "DBINIT_REPLICA_MAX_LAG": "0.001"}
    proc = manage("dbhealth", "--database", "replica", "--format", "json", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # a warning
    report = json.loads(proc.stdout)
    assert report["status"] == "warning"
    lag = next(c for c in report["checks"] if c["check"] == "replication")
    assert lag["id"] == "dbinit.W074" and lag["status"] == "warning"
    assert "(replay paused)" in lag["message"] and "DBINIT_REPLICA_MAX_LAG (0.001 s)" in lag["message"]
    assert "pg_wal_replay_resume()" in lag["hint"] and "initdb" not in lag["hint"]  # the standby's own fix
    assert manage("dbhealth", "--database", "replica", "--fail-level", "WARNING", env=env).returncode == 1
    # Start-up logs it and starts; /health/ stays at 200 and shows it to those who may see details.
    proc = python("-c", "import aisecretary.wsgi", env={**env, "DBINIT_STARTUP": "check", "DBINIT_LOG_LEVEL": "INFO"})
    assert proc.returncode == 0, proc.stderr
    assert "dbinit.W074" in proc.stderr and "(start-up continues)" in proc.stderr
    assert re.search(r"Database replica reachable \(read-only, lag \d+\.\d s \(replay paused\)\)", proc.stderr)
    out = json.loads(python("tests/probes/health.py", "?format=json", env={**env, **HEALTH_DETAILS}).stdout)
    assert out["status"] == 200 and "dbinit.W074" in json.loads(out["body"])["dbinit:database:replica"], out
    out = json.loads(python("tests/probes/health.py", "?format=json", env=env).stdout)
    assert out["status"] == 200 and json.loads(out["body"])["checks"]["dbinit:database:replica"] == "ok"
    assert lagging.snapshot(lagging.replica) == before
