"""initdb takes a database in any state to migrated, seeded and verified (subprocesses, real databases)."""

import json

import pytest

from tests.support.databases import manage

ADMIN = "admin@ai-secretary.com"
SEEDED_ROLES = {"admin", "manager", "member"}


def initdb(db, *args, env=None):
    return manage("initdb", "--noinput", *args, db=db, env=env)


def json_result(proc):
    return json.loads(proc.stdout)


def test_initdb_creates_a_missing_database_and_seeds_it(fresh_db):
    assert not fresh_db.exists()
    proc = initdb(fresh_db, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    assert result["status"] == "ok"
    assert [s["name"] for s in result["steps"]] == [
        "configuration", "database", "connect", "lock", "migrate", "seed", "verify"]
    assert result["steps"][1]["created"] == 1
    assert fresh_db.exists()
    assert fresh_db.scalar("SELECT slug FROM tenants_tenant") == "system"
    assert {r[0] for r in fresh_db.query("SELECT slug FROM accounts_role")} == SEEDED_ROLES
    admin = fresh_db.query("SELECT email, is_staff, is_superuser, is_active FROM accounts_user")
    assert [(a[0], bool(a[1]), bool(a[2]), bool(a[3])) for a in admin] == [(ADMIN, True, True, True)]
    assert fresh_db.scalar("SELECT COUNT(*) FROM django_migrations") == len(
        result["steps"][4]["detail"]["applied"])


def test_initdb_text_output_reports_every_step_with_its_duration(fresh_db):
    proc = initdb(fresh_db)
    assert proc.returncode == 0, proc.stderr
    for step in ("configuration", "database", "connect", "lock", "seed", "verify"):
        assert f"  {step}" in proc.stdout
    assert "Applying accounts.0001_initial... OK (" in proc.stdout
    assert "Database initialised in" in proc.stdout


def test_second_initdb_changes_nothing_and_hashes_no_password(initialized_db):
    before_rows = initialized_db.row_counts()
    password = initialized_db.scalar("SELECT password FROM accounts_user WHERE email = %s", (ADMIN,))
    proc = initdb(initialized_db, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    assert result["changed"] is False
    assert all(s["created"] == 0 for s in result["steps"])
    assert result["steps"][3]["status"] == "skipped"  # no lock needed when there is nothing to do
    after_rows = initialized_db.row_counts()
    # Only dbinit's own run history grows.
    assert after_rows.pop("dbinit_initializationrun") == before_rows.pop("dbinit_initializationrun") + 1
    assert after_rows == before_rows
    assert initialized_db.scalar("SELECT password FROM accounts_user WHERE email = %s", (ADMIN,)) == password


def test_initdb_completes_a_half_migrated_database(fresh_db):
    fresh_db.create_empty()
    proc = manage("migrate", "accounts", "0001", db=fresh_db)
    assert proc.returncode == 0, proc.stderr
    applied_before = set(fresh_db.applied_migrations())
    assert ("accounts", "0002_seed_system_roles") not in applied_before
    proc = initdb(fresh_db, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    migrate = json_result(proc)["steps"][4]
    assert migrate["skipped"] == len(applied_before)
    assert "accounts.0002_seed_system_roles" in migrate["detail"]["applied"]
    assert not any(a in {f"{x}.{y}" for x, y in applied_before} for a in migrate["detail"]["applied"])
    assert {r[0] for r in fresh_db.query("SELECT slug FROM accounts_role")} == SEEDED_ROLES


def test_initdb_on_an_empty_existing_database(fresh_db, template_db):
    fresh_db.create_empty()
    proc = initdb(fresh_db, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    assert result["status"] == "ok"
    database = result["steps"][1]
    assert (database["created"], database["skipped"]) == (0, 1)  # used as it is, not created
    # The same database one initdb makes from nothing: every table, column and migration, the seed.
    assert fresh_db.tables() == template_db.tables()
    assert {t: fresh_db.columns(t) for t in fresh_db.tables()} == {t: template_db.columns(t) for t in template_db.tables()}
    assert sorted(fresh_db.applied_migrations()) == sorted(template_db.applied_migrations())
    assert fresh_db.scalar("SELECT slug FROM tenants_tenant") == "system"
    assert {r[0] for r in fresh_db.query("SELECT slug FROM accounts_role")} == SEEDED_ROLES
    assert fresh_db.query("SELECT email FROM accounts_user") == [(ADMIN,)]


def test_plan_changes_nothing_on_a_missing_database(fresh_db):
    proc = initdb(fresh_db, "--plan", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    assert result["plan_only"] is True
    pending = result["steps"][4]["detail"]["pending"]
    assert "accounts.0001_initial" in pending and "dbinit.0001_initial" in pending
    assert not fresh_db.exists()
    if fresh_db.engine == "sqlite":
        assert not fresh_db.path.parent.exists()


def test_plan_changes_nothing_on_a_half_migrated_database(fresh_db):
    fresh_db.create_empty()
    assert manage("migrate", "tenants", "0001", db=fresh_db).returncode == 0
    before = fresh_db.fingerprint()
    proc = initdb(fresh_db, "--plan")
    assert proc.returncode == 0, proc.stderr
    assert "would apply tenants.0002_seed_system_tenant" in proc.stdout
    assert "Plan only: nothing was changed" in proc.stdout
    assert fresh_db.fingerprint() == before


def test_no_seed_skips_the_admin_but_keeps_reference_data(fresh_db):
    proc = initdb(fresh_db, "--no-seed", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    result = json_result(proc)
    assert result["steps"][5]["status"] == "skipped"
    assert fresh_db.scalar("SELECT COUNT(*) FROM accounts_user") == 0
    assert fresh_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE slug = 'system'") == 1
    assert result["status"] == "warning"
    assert result["steps"][6]["warnings"][0]["id"] == "dbinit.W040"


def test_seeding_keeps_what_an_operator_changed(initialized_db):
    initialized_db.execute(
        "UPDATE accounts_role SET name = 'Owner' WHERE slug = 'admin'",
        "UPDATE accounts_user SET password = 'operator-set' WHERE email = 'admin@ai-secretary.com'",
        "DELETE FROM accounts_role WHERE slug = 'member'",
    )
    proc = initdb(initialized_db, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert initialized_db.scalar("SELECT name FROM accounts_role WHERE slug = 'admin'") == "Owner"
    assert initialized_db.scalar("SELECT password FROM accounts_user") == "operator-set"
    assert initialized_db.scalar("SELECT COUNT(*) FROM accounts_role WHERE slug = 'member'") == 1
    seed = json_result(proc)["steps"][5]
    assert seed["detail"]["created"] == ["roles:1"]


def test_production_refuses_the_well_known_password(fresh_db):
    proc = initdb(fresh_db, env={"AISECRETARY_ENV": "production", "SECRET_KEY": "x" * 50,
                                 "DBINIT_ADMIN_PASSWORD": "admin123"})
    assert proc.returncode == 1
    assert "dbinit.E006" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not fresh_db.exists()


def test_production_without_a_password_generates_one_shown_once(fresh_db):
    # -v 2 shows the dbinit log (at -v 1 initdb keeps it off the console, whatever DBINIT_LOG_LEVEL says).
    proc = initdb(fresh_db, "-v", "2", env={"AISECRETARY_ENV": "production", "SECRET_KEY": "x" * 50,
                                            "DBINIT_LOG_LEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "Generated a password" in line)
    password = line.rsplit(": ", 1)[1].strip()
    assert len(password) >= 20
    assert "Created the admin user admin@ai-secretary.com" in proc.stderr  # the log is there...
    assert password not in proc.stderr  # ...and never carries it
    stored = fresh_db.scalar("SELECT password FROM accounts_user WHERE email = %s", (ADMIN,))
    assert stored.startswith("pbkdf2_sha256$") and password not in stored


def test_database_password_never_appears_in_output(fresh_db):
    if fresh_db.engine != "postgresql":
        pytest.skip("SQLite URLs carry no password")
    secret = "s3cr3t-Pa55"
    fresh_db.url = fresh_db.url.replace("root@", f"root:{secret}@")
    proc = initdb(fresh_db, "--format", "json", env={"DBINIT_LOG_LEVEL": "DEBUG"})
    assert proc.returncode == 0, proc.stderr  # trust authentication: the password is carried, not checked
    assert json_result(proc)["status"] == "ok"
    assert secret not in proc.stdout + proc.stderr
    assert '"password": "***"' in proc.stdout
