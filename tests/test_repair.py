"""dbrepair heals real damage without losing a row; --dry-run changes nothing.

Every test starts from a copy of an initialised database in which a tenant
holds many users, damages it with plain SQL, and compares every table's row
count before and after.
"""

import hashlib
import json
import re
import sqlite3

import pytest

from tests.support.databases import POPULATED_USERS, manage
from tests.support.locks import put_lease

BOOKKEEPING = {"dbinit_initializationrun", "dbinit_migrationchecksum", "django_migrations"}


def dbrepair(db, *args, env=None):
    return manage("dbrepair", "--noinput", *args, db=db, env=env)


def health(db, env=None):
    proc = manage("dbhealth", "--format", "json", db=db, env=env)
    return proc.returncode, json.loads(proc.stdout)


def data_counts(db):
    return {t: n for t, n in db.row_counts().items() if t not in BOOKKEEPING}


def fingerprint(db):
    """What a dry run must leave identical: every table's columns, rows and content; on SQLite the file's bytes too."""
    shared = db.fingerprint()
    return (shared, hashlib.sha256(db.path.read_bytes()).hexdigest()) if db.engine == "sqlite" else shared


def repair_json(db, *args, env=None):
    proc = dbrepair(db, "--format", "json", *args, env=env)
    return proc, json.loads(proc.stdout)


def assert_healthy(db):
    code, report = health(db)
    problems = [c for c in report["checks"] if c["status"] in ("error", "critical")]
    assert code == 0 and not problems, problems


def test_populated_database_holds_the_users(populated_db):
    assert populated_db.scalar("SELECT COUNT(*) FROM accounts_user") == POPULATED_USERS + 1


def test_fingerprint_sees_an_updated_row(populated_db):
    """The helper the dry-run test trusts: one updated value, same counts and columns, another fingerprint."""
    before = populated_db.fingerprint()
    populated_db.execute("UPDATE accounts_role SET description = 'edited' WHERE slug = 'member'")
    after = populated_db.fingerprint()
    assert after["tables"]["accounts_role"]["rows"] == before["tables"]["accounts_role"]["rows"]
    assert after["tables"]["accounts_role"]["content"] != before["tables"]["accounts_role"]["content"]
    after["tables"]["accounts_role"]["content"] = before["tables"]["accounts_role"]["content"]
    assert after == before


def test_dry_run_changes_nothing(populated_db):
    populated_db.drop_column("tenants_tenant", "updated_at")
    populated_db.execute("DELETE FROM django_migrations WHERE app = 'sessions'",
                         "DELETE FROM accounts_role WHERE slug = 'manager'")
    before = fingerprint(populated_db)
    proc, result = repair_json(populated_db, "--dry-run")
    assert proc.returncode == 1  # a dry run leaves the database unhealthy
    kinds = {a["action"] for a in result["actions"]}
    assert {"recreate_columns", "record_lost_migrations", "reseed"} <= kinds
    assert all(a["status"] == "planned" for a in result["actions"])
    assert result["backup"] is None
    assert fingerprint(populated_db) == before


def test_reseeds_missing_rows_with_initdb_seeding(populated_db):
    populated_db.execute("DELETE FROM accounts_role WHERE slug = 'manager'")
    before = data_counts(populated_db)
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stderr
    assert [a["action"] for a in result["actions"]] == ["reseed"]
    after = data_counts(populated_db)
    assert after.pop("accounts_role") == before.pop("accounts_role") + 1
    assert after == before
    assert_healthy(populated_db)


GROUP_PERMISSIONS = ("SELECT g.name, p.codename FROM auth_group_permissions gp JOIN auth_group g ON g.id = gp.group_id "
                     "JOIN auth_permission p ON p.id = gp.permission_id")


def test_role_groups_that_lost_their_permissions_are_reported_and_restored(populated_db):
    seeded = sorted(populated_db.query(GROUP_PERMISSIONS))
    assert len(seeded) == 7
    populated_db.execute("DELETE FROM auth_group_permissions")
    code, report = health(populated_db)
    seed = [c for c in report["checks"] if c["check"] == "seed"]
    assert [(c["id"], c["status"], c["message"]) for c in seed] == [
        ("dbinit.W043", "warning", "Role group(s) hold none of their role's permissions: Role: manager, Role: member.")]
    assert "python manage.py dbrepair" in seed[0]["hint"]
    assert code == 0  # a warning
    before = data_counts(populated_db)
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(a["action"], a["fixes"], a["status"]) for a in result["actions"]] == [("reseed", "dbinit.W043", "done")]
    assert sorted(populated_db.query(GROUP_PERMISSIONS)) == seeded
    after = data_counts(populated_db)
    assert after.pop("auth_group_permissions") == 7
    before.pop("auth_group_permissions")
    assert after == before
    assert_healthy(populated_db)


def test_a_role_group_an_operator_changed_is_left_alone(populated_db):
    """Only a group left with no permission at all is restored; one with any permission is the operator's."""
    populated_db.execute(
        "DELETE FROM auth_group_permissions WHERE group_id = (SELECT id FROM auth_group WHERE name = 'Role: manager')",
        "DELETE FROM auth_group_permissions WHERE group_id = (SELECT id FROM auth_group WHERE name = 'Role: member') "
        "AND permission_id = (SELECT id FROM auth_permission WHERE codename = 'view_role')")
    code, report = health(populated_db)
    assert [c["message"] for c in report["checks"] if c["id"] == "dbinit.W043"] == [
        "Role group(s) hold none of their role's permissions: Role: manager."]
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = sorted(populated_db.query(GROUP_PERMISSIONS))
    assert [c for g, c in rows if g == "Role: manager"] == sorted(
        ["view_tenant", "view_user", "add_user", "change_user", "view_role"])
    assert [c for g, c in rows if g == "Role: member"] == ["view_tenant"]


def test_recreates_a_deleted_admin_and_system_tenant(populated_db):
    populated_db.execute("DELETE FROM accounts_user WHERE email = 'admin@ai-secretary.com'",
                         "DELETE FROM tenants_tenant WHERE slug = 'system'")
    code, report = health(populated_db)
    assert {"dbinit.E040", "dbinit.W040"} <= {c["id"] for c in report["checks"]}
    before = data_counts(populated_db)
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["actions"][0]["fixes"] == "dbinit.E040, dbinit.W040"
    after = data_counts(populated_db)
    assert after.pop("accounts_user") == before.pop("accounts_user") + 1
    assert after.pop("tenants_tenant") == before.pop("tenants_tenant") + 1
    assert after == before
    assert populated_db.scalar("SELECT COUNT(*) FROM accounts_user WHERE tenant_id = "
                               "(SELECT id FROM tenants_tenant WHERE slug = 'acme')") == POPULATED_USERS
    assert_healthy(populated_db)


def test_recreates_a_dropped_table_alone(populated_db):
    populated_db.drop_table("django_admin_log")
    before = data_counts(populated_db)
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["actions"][0]["outcome"] == "created django_admin_log"
    assert "django_admin_log" in populated_db.tables()
    after = data_counts(populated_db)
    assert after.pop("django_admin_log") == 0
    assert after == before
    assert_healthy(populated_db)


def test_adds_back_a_dropped_column_keeping_every_row(populated_db):
    populated_db.drop_column("tenants_tenant", "updated_at")
    before = data_counts(populated_db)
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["actions"][0]["outcome"] == "added tenants_tenant.updated_at"
    assert "updated_at" in populated_db.columns("tenants_tenant")
    assert data_counts(populated_db) == before
    assert populated_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE updated_at IS NULL") == 0
    assert_healthy(populated_db)


def test_rerecords_a_truncated_migration_table_without_running_migrations(populated_db):
    """Verified migrations are recorded; data migrations are left to the person, with the commands."""
    applied = sorted(populated_db.applied_migrations())
    populated_db.execute("DELETE FROM django_migrations")
    before = data_counts(populated_db)
    code, report = health(populated_db)
    assert "dbinit.W024" in {c["id"] for c in report["checks"]}
    proc, result = repair_json(populated_db)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    actions = {a["action"]: a for a in result["actions"]}
    assert actions["record_lost_migrations"]["status"] == "done"
    assert "tenants.0001_initial" in actions["record_lost_migrations"]["outcome"]
    # The seed data migrations cannot be verified from the schema: the person checks, then runs these.
    hint = next(f["hint"] for f in result["manual"] if f["id"] == "dbinit.W029")
    command = re.search(r"python manage\.py (dbrepair( --record \S+)+)", hint).group(1).split()
    assert sorted(command[2::2]) == ["accounts.0002_seed_system_roles", "auth.0011_update_proxy_permissions",
                                     "tenants.0002_seed_system_tenant"]
    proc, result = repair_json(populated_db, *command[1:])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Everything was recorded; nothing was applied (nothing re-ran).
    actions = {a["action"]: a for a in result["actions"]}
    assert "apply_migrations" not in actions or actions["apply_migrations"]["outcome"] == "nothing pending"
    assert sorted(populated_db.applied_migrations()) == applied
    assert data_counts(populated_db) == before
    assert_healthy(populated_db)


def test_lost_records_with_a_missing_column_are_recorded_only_once_the_column_is_back(populated_db):
    """Strict verification: a lost migration whose columns are not all there is not recorded as it is."""
    populated_db.execute("DELETE FROM django_migrations WHERE app = 'tenants'")
    populated_db.drop_column("tenants_tenant", "updated_at")
    code, report = health(populated_db)
    partly = next(c for c in report["checks"] if c["id"] == "dbinit.E032")
    assert "tenants.0001_initial" in partly["message"] and "missing tenants_tenant.updated_at" in partly["message"]
    proc, result = repair_json(populated_db)
    outcome = {a["action"]: a["outcome"] for a in result["actions"]}["record_lost_migrations"]
    first, _, second = outcome.partition("after the schema repairs")
    assert "tenants.0001_initial" in first.split("not recorded")[1]  # refused while the column was missing
    assert "recorded 1: tenants.0001_initial" in second  # verified once the column was added back
    assert ("tenants", "0001_initial") in populated_db.applied_migrations()
    # Its data migration cannot be verified, and accounts.0001 (recorded) depends on it.
    hint = next(f["hint"] for f in result["manual"] if f["id"] == "dbinit.W029")
    assert "python manage.py dbrepair --record tenants.0002_seed_system_tenant" in hint
    assert proc.returncode == 1
    assert populated_db.scalar("SELECT COUNT(*) FROM accounts_user") == POPULATED_USERS + 1


def test_records_of_missing_migrations_need_prune(populated_db):
    populated_db.execute(
        "INSERT INTO django_migrations (app, name, applied) VALUES ('accounts', '0099_gone', '2026-01-01')")
    proc, result = repair_json(populated_db)
    assert proc.returncode == 1
    assert [m["id"] for m in result["manual"]] == ["dbinit.W021"]
    assert ("accounts", "0099_gone") in populated_db.applied_migrations()
    before = data_counts(populated_db)
    proc, result = repair_json(populated_db, "--prune")
    assert proc.returncode == 0, proc.stdout
    assert ("accounts", "0099_gone") not in populated_db.applied_migrations()
    assert data_counts(populated_db) == before


def test_many_damages_at_once_end_healthy(populated_db):
    populated_db.drop_table("django_session")
    populated_db.drop_column("tenants_tenant", "updated_at")
    populated_db.execute("DELETE FROM django_migrations WHERE app = 'sessions'",
                         "DELETE FROM accounts_role WHERE slug = 'manager'")
    before = data_counts(populated_db)
    proc = dbrepair(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "The database is healthy." in proc.stdout
    after = data_counts(populated_db)
    assert after.pop("django_session") == 0
    assert after.pop("accounts_role") == before.pop("accounts_role") + 1
    before.pop("django_session", None)
    assert after == before
    assert_healthy(populated_db)


@pytest.mark.sqlite_only
def test_sqlite_backup_is_written_first_and_readable(populated_db):
    populated_db.execute("DELETE FROM accounts_role WHERE slug = 'manager'")
    proc = dbrepair(populated_db)
    assert proc.returncode == 0
    line = next(line for line in proc.stdout.splitlines() if line.startswith("Backup written to "))
    backup = line.removeprefix("Backup written to ").strip()
    assert backup.startswith(str(populated_db.path.parent / "backups"))
    conn = sqlite3.connect(backup)
    try:
        assert conn.execute("SELECT COUNT(*) FROM accounts_user").fetchone()[0] == POPULATED_USERS + 1
        assert conn.execute("SELECT COUNT(*) FROM accounts_role WHERE slug = 'manager'").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.sqlite_only
def test_record_is_written_after_the_backup(populated_db):
    """dbrepair --record writes a migration record: the backup holds the database before that write."""
    populated_db.execute("DELETE FROM django_migrations WHERE app = 'accounts' AND name = '0002_seed_system_roles'")
    proc, result = repair_json(populated_db, "--record", "accounts.0002_seed_system_roles")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("accounts", "0002_seed_system_roles") in populated_db.applied_migrations()
    assert result["backup"], result
    conn = sqlite3.connect(result["backup"])
    try:
        recorded = conn.execute("SELECT COUNT(*) FROM django_migrations WHERE app = 'accounts' "
                                "AND name = '0002_seed_system_roles'").fetchone()[0]
        assert recorded == 0  # the state before the write
        assert conn.execute("SELECT COUNT(*) FROM accounts_user").fetchone()[0] == POPULATED_USERS + 1
    finally:
        conn.close()


def test_record_asks_before_it_writes(populated_db):
    """Interactive dbrepair --record shows the records it would write and writes none unless told yes."""
    populated_db.execute("DELETE FROM django_migrations WHERE app = 'accounts' AND name = '0002_seed_system_roles'")
    applied = len(populated_db.applied_migrations())
    refused = manage("dbrepair", "--record", "accounts.0002_seed_system_roles", db=populated_db, input="n\n")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "record_checked_migrations: record accounts.0002_seed_system_roles as applied" in refused.stdout
    assert "dbinit.E071" in refused.stderr and "Traceback" not in refused.stderr
    assert len(populated_db.applied_migrations()) == applied
    assert ("accounts", "0002_seed_system_roles") not in populated_db.applied_migrations()
    agreed = manage("dbrepair", "--record", "accounts.0002_seed_system_roles", db=populated_db, input="y\n")
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert len(populated_db.applied_migrations()) == applied + 1
    assert ("accounts", "0002_seed_system_roles") in populated_db.applied_migrations()
    assert populated_db.scalar("SELECT COUNT(*) FROM accounts_user") == POPULATED_USERS + 1


@pytest.mark.sqlite_only
def test_backup_dir_setting_is_honoured(populated_db, tmp_path):
    populated_db.execute("DELETE FROM accounts_role WHERE slug = 'manager'")
    proc = dbrepair(populated_db, env={"DBINIT_BACKUP_DIR": str(tmp_path / "elsewhere")})
    assert proc.returncode == 0
    assert len(list((tmp_path / "elsewhere").glob("db-*-repair.sqlite3"))) == 1


@pytest.mark.sqlite_only
def test_corrupt_sqlite_file_is_never_written(populated_db):
    data = populated_db.path.read_bytes()
    populated_db.path.write_bytes(data[:4096] + b"\x13" * (len(data) - 4096))
    corrupted = hashlib.sha256(populated_db.path.read_bytes()).hexdigest()
    proc = dbrepair(populated_db)
    assert proc.returncode == 1
    assert "Refusing to repair" in proc.stdout
    assert "backup" in proc.stderr.lower()
    assert "Traceback" not in proc.stderr
    assert hashlib.sha256(populated_db.path.read_bytes()).hexdigest() == corrupted


@pytest.mark.sqlite_only
def test_not_a_database_is_never_written(fresh_db):
    fresh_db.path.parent.mkdir(parents=True)
    fresh_db.path.write_bytes(b"PK\x03\x04 this is a zip, not a database" * 50)
    before = fresh_db.path.read_bytes()
    proc = dbrepair(fresh_db)
    assert proc.returncode == 1 and "dbinit.E015" in proc.stderr
    assert fresh_db.path.read_bytes() == before


@pytest.mark.postgresql_only
def test_expired_lease_of_a_dead_holder_is_reported_and_released(populated_db):
    put_lease(populated_db, host="old-pod", pid=77, step="initdb:migrate", expires_in=-40)
    code, report = health(populated_db)
    lock = next(c for c in report["checks"] if c["check"] == "lock")
    assert lock["id"] == "dbinit.W060" and "initdb:migrate on old-pod (pid 77)" in lock["message"]
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout
    assert [a["action"] for a in result["actions"]] == ["release_lock"]
    assert populated_db.scalar("SELECT COUNT(*) FROM dbinit_lease") == 0


@pytest.mark.postgresql_only
def test_lock_held_by_a_live_holder_is_not_touched(populated_db):
    put_lease(populated_db, host="busy-pod", pid=78, step="initdb:seed", expires_in=300)
    code, report = health(populated_db)
    lock = next(c for c in report["checks"] if c["check"] == "lock")
    assert lock["status"] == "info" and "in progress (initdb:seed on busy-pod (pid 78)" in lock["message"]
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout
    assert result["actions"] == []
    assert populated_db.query("SELECT host, pid FROM dbinit_lease") == [("busy-pod", 78)]


def test_wrong_nullability_is_repaired(populated_db):
    """W025 both ways: NOT NULL given back (no row holds NULL) and dropped where the state allows NULL."""
    populated_db.set_nullable("tenants_tenant", "name", True)
    populated_db.set_nullable("django_admin_log", "object_id", False)  # no rows: SQLite rebuilds it empty
    before = data_counts(populated_db)
    code, report = health(populated_db)
    finding = next(c for c in report["checks"] if c["id"] == "dbinit.W025")
    assert "tenants_tenant.name (NOT NULL expected)" in finding["message"], finding
    assert "django_admin_log.object_id (NULL expected)" in finding["message"], finding
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    actions = {a["action"]: a for a in result["actions"]}
    assert actions["repair_nullability"]["status"] == "done", actions
    assert data_counts(populated_db) == before
    assert_healthy(populated_db)
    with pytest.raises(Exception, match="(?i)null"):  # NOT NULL is enforced again
        populated_db.execute("UPDATE tenants_tenant SET name = NULL")


def test_not_null_over_null_rows_is_left_with_its_steps(populated_db):
    """SET NOT NULL is never forced over NULL rows: E036 names the column and says how to fill it."""
    populated_db.set_nullable("tenants_tenant", "name", True)
    populated_db.execute("UPDATE tenants_tenant SET name = NULL WHERE slug <> 'system'")
    nulls = populated_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE name IS NULL")
    assert nulls > 0
    before = fingerprint(populated_db)[0] if populated_db.engine == "sqlite" else fingerprint(populated_db)
    proc, result = repair_json(populated_db)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    left = next(f for f in result["manual"] if f["id"] == "dbinit.E036")
    assert "tenants_tenant.name" in left["message"] and f"{nulls} row" in left["message"], left
    assert "tenants_tenant" in left["hint"] and "SET NOT NULL" in left["hint"], left
    assert "dbinit.W025" in {f["id"] for f in result["remaining"]}
    assert populated_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE name IS NULL") == nulls
    after = fingerprint(populated_db)[0] if populated_db.engine == "sqlite" else fingerprint(populated_db)
    assert after["tables"]["tenants_tenant"] == before["tables"]["tenants_tenant"]


@pytest.mark.postgresql_only
def test_a_dropped_like_index_is_found_and_recreated(populated_db):
    """PostgreSQL's second index on an indexed varchar column (varchar_pattern_ops, for LIKE) is checked too."""
    query = ("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'django_session' "
             "AND indexdef LIKE '%%varchar_pattern_ops%%'")
    [(name, definition)] = populated_db.query(query)
    populated_db.execute(f'DROP INDEX "{name}"')
    before = data_counts(populated_db)
    code, report = health(populated_db)
    finding = next(c for c in report["checks"] if c["id"] == "dbinit.W026")
    assert "django_session (session_key) varchar_pattern_ops" in finding["message"], finding
    proc, result = repair_json(populated_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [(a["action"], a["status"]) for a in result["actions"]] == [("recreate_constraints", "done")]
    assert populated_db.query(query) == [(name, definition)]  # as Django made it, name included
    assert data_counts(populated_db) == before
    assert_healthy(populated_db)


# --- duplicated migration history (issue 12) ------------------------------------------------
def test_duplicate_history_is_found_and_repaired_keeping_the_earliest_records(initialized_db):
    # A database initialised before the unique index existed, then migrated twice at once.
    initialized_db.execute("DROP INDEX dbinit_migrations_app_name_uniq")
    originals = initialized_db.query("SELECT id, app, name FROM django_migrations ORDER BY id")
    initialized_db.execute("INSERT INTO django_migrations (app, name, applied) SELECT app, name, applied "
                           "FROM django_migrations WHERE app IN ('sessions', 'tenants')")
    copies = initialized_db.scalar("SELECT COUNT(*) FROM django_migrations WHERE app IN ('sessions', 'tenants')")
    assert copies == 2 * sum(1 for _, app, _ in originals if app in ("sessions", "tenants"))

    code, report = health(initialized_db)
    finding = next(c for c in report["checks"] if c["id"] == "dbinit.E061")
    assert code == 1 and finding["status"] == "error"
    assert "sessions.0001_initial (2 records)" in finding["message"]

    proc, result = repair_json(initialized_db)
    assert proc.returncode == 0, proc.stdout
    assert [(a["action"], a["status"]) for a in result["actions"]] == [("remove_duplicate_records", "done")]
    assert initialized_db.query("SELECT id, app, name FROM django_migrations ORDER BY id") == originals
    assert_healthy(initialized_db)


def test_the_history_cannot_record_a_migration_twice(initialized_db):
    """initdb leaves a unique index on (app, name): a second recording fails instead of duplicating."""
    conn = initialized_db.connect()
    try:
        cursor = conn.cursor()
        with pytest.raises(Exception) as raised:
            cursor.execute("INSERT INTO django_migrations (app, name, applied) "
                           "VALUES ('sessions', '0001_initial', CURRENT_TIMESTAMP)")
        assert "unique" in str(raised.value).lower()
    finally:
        conn.close()
    assert initialized_db.scalar("SELECT COUNT(*) FROM django_migrations WHERE app = 'sessions'") == 1
