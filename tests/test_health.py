"""dbhealth, `check --database` and /health/ report each damage with its id and a fix.

Every test damages a real database (a copy of one initialised by initdb) with
plain SQL, then asks the three front ends.
"""

import json

import pytest

from tests.support.databases import manage, python

ADMIN = "admin@ai-secretary.com"
CHECK_KEYS = {"id", "check", "status", "message", "hint", "duration_ms"}


def dbhealth(db, *args, env=None):
    return manage("dbhealth", *args, db=db, env=env)


def health_json(db, *args, env=None):
    proc = dbhealth(db, "--format", "json", *args, env=env)
    data = json.loads(proc.stdout)
    assert_documented_shape(data)
    return proc, data


def assert_documented_shape(data):
    assert set(data) == {"status", "database", "duration_ms", "checks"}
    assert data["status"] in {"ok", "warning", "error"}
    assert data["database"]["password"] in {"", "***"}
    assert {"alias", "engine", "vendor", "name", "host", "port", "user"} <= set(data["database"])
    assert data["checks"], "at least one check result"
    for check in data["checks"]:
        assert set(check) == CHECK_KEYS
        assert check["id"].startswith("dbinit.") and check["id"][7] in "CEWI"
        assert check["status"] in {"ok", "info", "warning", "error", "critical"}
        assert isinstance(check["message"], str) and check["message"]
        assert isinstance(check["duration_ms"], (int, float)) and check["duration_ms"] >= 0
        if check["status"] in {"warning", "error", "critical"}:
            assert check["hint"], f"{check['id']} has no hint"


def finding(data, code):
    matches = [c for c in data["checks"] if c["id"] == code]
    assert matches, f"{code} not reported; got {[c['id'] for c in data['checks']]}"
    return matches[0]


def health_endpoint(db, env=None):
    proc = python("tests/probes/health.py", "?format=json", db=db, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def check_database(db, env=None):
    return manage("check", "--database", "default", db=db, env=env)


def test_healthy_database_reports_ok_and_exits_zero(initialized_db):
    proc, data = health_json(initialized_db)
    assert proc.returncode == 0, proc.stderr
    assert data["status"] == "ok"
    ids = {c["id"] for c in data["checks"]}
    assert {"dbinit.I001", "dbinit.I003", "dbinit.I004", "dbinit.I005", "dbinit.I007"} <= ids
    text = dbhealth(initialized_db)
    assert text.returncode == 0
    assert "Status: ok" in text.stdout
    assert check_database(initialized_db).returncode == 0
    assert health_endpoint(initialized_db)["status"] == 200


def drop_session_table(db):
    db.drop_table("django_session")


def drop_tenant_column(db):
    db.drop_column("tenants_tenant", "updated_at")


def delete_session_records(db):
    db.execute("DELETE FROM django_migrations WHERE app = 'sessions'")


def record_missing_migration(db):
    db.execute("INSERT INTO django_migrations (app, name, applied) VALUES ('accounts', '0099_gone', '2026-01-01')")


def delete_member_role(db):
    db.execute("DELETE FROM accounts_role WHERE slug = 'member'")


def empty_role_groups(db):
    db.execute("DELETE FROM auth_group_permissions")


def delete_admin_and_tenant(db):
    db.execute("DELETE FROM accounts_user", "DELETE FROM tenants_tenant WHERE slug = 'system'")


def edit_checksum(db):
    db.execute("UPDATE dbinit_migrationchecksum SET checksum = 'edited' WHERE app = 'tenants' AND name = '0001_initial'")


def record_failed_run(db):
    db.execute("INSERT INTO dbinit_initializationrun (started_at, finished_at, host, pid, trigger, outcome, "
               "error_code, steps) VALUES ('2099-01-01 00:00:00', '2099-01-01 00:00:01', 'web-1', 1, 'initdb', "
               "'failed', 'dbinit.E020', '[]')")


# damage, id, status, a word the hint must contain, /health/'s status code (None: the probe does not
# look at it: an edited migration or an old failed run is for operators, not load balancers)
DAMAGES = {
    "dropped_table": (drop_session_table, "dbinit.E030", "error", "dbrepair", 500),
    "dropped_column": (drop_tenant_column, "dbinit.E031", "error", "dbrepair", 500),
    "deleted_migration_records": (delete_session_records, "dbinit.W024", "warning", "dbrepair", 200),
    "record_without_file": (record_missing_migration, "dbinit.W021", "warning", "--prune", 200),
    "missing_role": (delete_member_role, "dbinit.E041", "error", "dbrepair", 500),
    "missing_tenant": (delete_admin_and_tenant, "dbinit.E040", "error", "initdb", 500),
    "emptied_role_groups": (empty_role_groups, "dbinit.W043", "warning", "dbrepair", None),
    "edited_migration": (edit_checksum, "dbinit.W023", "warning", "git checkout", None),
    "failed_last_run": (record_failed_run, "dbinit.W061", "warning", "initdb", None),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_damage_is_reported_with_its_id_and_fix(initialized_db, damage):
    damage_fn, code, status, fix, endpoint_status = DAMAGES[damage]
    damage_fn(initialized_db)

    proc, data = health_json(initialized_db)
    reported = finding(data, code)
    assert reported["status"] == status
    assert fix in reported["hint"]
    assert data["status"] == status
    assert proc.returncode == (1 if status == "error" else 0)

    # Text: the id, the message and the hint under it.
    text = dbhealth(initialized_db)
    assert code in text.stdout and f"hint: {reported['hint']}" in text.stdout
    assert text.returncode == (1 if status == "error" else 0)
    # --fail-level WARNING makes warnings fail too, as in manage.py check.
    assert dbhealth(initialized_db, "--fail-level", "WARNING").returncode == 1

    # Django's check framework, database tag.
    check = check_database(initialized_db)
    assert f"({code})" in check.stderr + check.stdout
    assert check.returncode == (1 if status == "error" else 0)

    # /health/ through the test client.
    endpoint = health_endpoint(initialized_db)
    if endpoint_status is None:
        assert endpoint["status"] == 200
    else:
        assert endpoint["status"] == endpoint_status
        assert code in endpoint["body"]


def test_deleted_admin_is_a_warning(initialized_db):
    initialized_db.execute("DELETE FROM accounts_user")
    proc, data = health_json(initialized_db)
    assert finding(data, "dbinit.W040")["status"] == "warning"
    assert proc.returncode == 0


def test_model_change_without_migration_is_reported(fresh_db):
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings.drift"}
    init = manage("initdb", "--noinput", db=fresh_db, env=env)
    # initdb's verification already refuses: the model wants a column no migration creates.
    assert init.returncode == 1 and "dbinit.E031" in init.stderr and "driftapp_note.pinned" in init.stderr
    proc, data = health_json(fresh_db, env=env)
    reported = finding(data, "dbinit.W022")
    assert "pinned" in reported["message"] and "makemigrations" in reported["hint"]
    check = check_database(fresh_db, env=env)
    assert "(dbinit.W022)" in check.stderr + check.stdout


def test_default_admin_password_in_production_is_reported(initialized_db):
    env = {"AISECRETARY_ENV": "production", "SECRET_KEY": "k" * 50, "DBINIT_ADMIN_PASSWORD": "another-Secret-1"}
    proc, data = health_json(initialized_db, env=env)
    reported = finding(data, "dbinit.W041")
    assert "changepassword" in reported["hint"]
    # The setting itself is an error in production, in plain `check` too (no database needed).
    env["DBINIT_ADMIN_PASSWORD"] = "admin123"
    check = manage("check", "--deploy", db=initialized_db, env=env)
    assert "(dbinit.E006)" in check.stderr and check.returncode == 1


def test_pending_migrations_are_a_warning(fresh_db):
    fresh_db.create_empty()
    assert manage("migrate", "accounts", "0001", db=fresh_db).returncode == 0
    proc, data = health_json(fresh_db)
    reported = finding(data, "dbinit.W020")
    assert reported["status"] == "warning"
    assert "initdb" in reported["hint"]
    assert "dbinit.E030" not in {c["id"] for c in data["checks"]}  # pending, not damaged
    assert data["status"] == "warning"
    assert proc.returncode == 0  # a warning; --fail-level WARNING makes it fail
    assert dbhealth(fresh_db, "--fail-level", "WARNING").returncode == 1


def test_missing_database_says_run_initdb(fresh_db):
    proc, data = health_json(fresh_db)
    assert finding(data, "dbinit.E009")["hint"].startswith("Run python manage.py initdb")
    assert proc.returncode == 1
    assert not fresh_db.exists()  # a health check never creates the database


@pytest.mark.sqlite_only
def test_corrupt_sqlite_file_is_reported_and_untouched(initialized_db):
    data = initialized_db.path.read_bytes()
    # Overwrite pages after the header: the file still opens but its b-trees are garbage.
    initialized_db.path.write_bytes(data[:4096] + b"\x13" * (len(data) - 4096))
    corrupted = initialized_db.path.read_bytes()
    proc, report = health_json(initialized_db)
    assert proc.returncode == 1
    # The header page is intact, so the file opens; the first read of a garbage page fails with
    # "database disk image is malformed": E015, and nothing else, whichever check reads first.
    assert finding(report, "dbinit.E015")["status"] == "error"
    assert {c["id"] for c in report["checks"] if c["status"] in ("error", "critical")} == {"dbinit.E015"}
    assert report["status"] == "error"
    assert initialized_db.path.read_bytes() == corrupted


@pytest.mark.sqlite_only
def test_file_that_is_not_a_database(fresh_db):
    fresh_db.path.parent.mkdir(parents=True)
    fresh_db.path.write_text("not a database\n")
    proc, data = health_json(fresh_db)
    assert finding(data, "dbinit.E015")["status"] == "error"
    assert fresh_db.path.read_text() == "not a database\n"


def test_plain_migrate_records_checksums_too(fresh_db):
    fresh_db.create_empty()
    assert manage("migrate", db=fresh_db).returncode == 0
    recorded = fresh_db.scalar("SELECT COUNT(*) FROM dbinit_migrationchecksum")
    assert recorded == fresh_db.scalar("SELECT COUNT(*) FROM django_migrations")
    # and an edit after that is caught
    fresh_db.execute("UPDATE dbinit_migrationchecksum SET checksum = 'x' WHERE app = 'accounts' AND name = '0001_initial'")
    proc, data = health_json(fresh_db)
    assert "accounts.0001_initial" in finding(data, "dbinit.W023")["message"]


def test_a_model_the_router_keeps_elsewhere_is_not_expected(fresh_db):
    """dbinit asks the router: a model it keeps out of this database is neither created nor missed."""
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings.routed"}
    init = manage("initdb", "--noinput", db=fresh_db, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    assert "checksumapp_entry" not in fresh_db.tables()
    assert ("checksumapp", "0001_initial") in fresh_db.applied_migrations()  # recorded, as migrate does
    proc, data = health_json(fresh_db, env=env)
    assert proc.returncode == 0 and data["status"] == "ok", data
    assert [c["id"] for c in data["checks"] if c["check"] == "schema"] == ["dbinit.I004"]
