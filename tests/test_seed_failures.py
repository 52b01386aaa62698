"""A failing optional seed is a warning; a failing admin or system-tenant seed is an error."""

import json

import pytest

from tests.support.databases import manage


def refuse_inserts(db, table, message):
    """A real database trigger that rejects every INSERT into ``table``."""
    if db.engine == "sqlite":
        db.execute(f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END")
    else:
        db.execute(
            f"CREATE FUNCTION refuse_{table}() RETURNS trigger LANGUAGE plpgsql AS "
            f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$",
            f"CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse_{table}()",
        )


@pytest.fixture
def unseeded_db(initialized_db):
    initialized_db.execute("DELETE FROM accounts_user", "DELETE FROM auth_group_permissions", "DELETE FROM auth_group")
    return initialized_db


def test_optional_seed_failure_is_a_warning(unseeded_db):
    refuse_inserts(unseeded_db, "auth_group", "groups are read-only")
    proc = manage("initdb", "--noinput", "--format", "json", db=unseeded_db)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    seed = result["steps"][5]
    assert result["status"] == "warning" and seed["status"] == "warning"
    assert seed["warnings"][0]["id"] == "dbinit.W042"
    assert "groups are read-only" in seed["warnings"][0]["message"]
    assert unseeded_db.scalar("SELECT COUNT(*) FROM accounts_user") == 1  # the admin was still created


def test_admin_seed_failure_is_an_error(unseeded_db):
    refuse_inserts(unseeded_db, "accounts_user", "users are read-only")
    proc = manage("initdb", "--noinput", db=unseeded_db)
    assert proc.returncode == 1
    assert "dbinit.E042" in proc.stderr and "users are read-only" in proc.stderr
    assert "(step: seed)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_system_tenant_seed_failure_is_an_error(unseeded_db):
    unseeded_db.execute("DELETE FROM tenants_tenant")
    refuse_inserts(unseeded_db, "tenants_tenant", "tenants are read-only")
    proc = manage("initdb", "--noinput", db=unseeded_db)
    assert proc.returncode == 1
    assert "dbinit.E042" in proc.stderr and "tenants are read-only" in proc.stderr
