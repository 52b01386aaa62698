"""The migration-set fingerprint: start-up, a no-op initdb and /health/ skip the migration graph only
when the files on disk and the applied records are exactly as last verified."""

import json

from tests.support.databases import manage, python

CHECK = {"DBINIT_STARTUP": "check"}


def steps(proc) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {s["name"]: s for s in json.loads(proc.stdout)["steps"]}


def stored(db) -> dict | None:
    value = db.scalar("SELECT value FROM dbinit_metadata WHERE key = 'migration_fingerprint'")
    return json.loads(value) if value else None


def test_initdb_stores_the_fingerprint_and_a_noop_initdb_trusts_it(fresh_db):
    first = steps(manage("initdb", "--noinput", "--format", "json", db=fresh_db))
    assert first["migrate"]["created"] > 0
    remembered = stored(fresh_db)
    assert remembered["applied"] == len(fresh_db.applied_migrations())
    assert remembered["files"] == remembered["applied"]  # every file on disk is applied
    again = steps(manage("initdb", "--noinput", "--format", "json", db=fresh_db))
    assert again["lock"]["summary"] == "nothing to do (migration set as last verified)"
    assert again["migrate"]["detail"] == {"fingerprint": remembered["digest"]}


def test_startup_check_imports_no_migration_module_when_the_set_is_as_verified(initialized_db):
    trusted = python("tests/probes/startup_modules.py", db=initialized_db, env=CHECK)
    assert trusted.returncode == 0, trusted.stderr
    assert json.loads(trusted.stdout) == {"migration_modules": 0}
    # Without a stored fingerprint the check loads the graph (and still passes).
    initialized_db.execute("DELETE FROM dbinit_metadata WHERE key = 'migration_fingerprint'")
    loaded = python("tests/probes/startup_modules.py", db=initialized_db, env=CHECK)
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["migration_modules"] >= len(initialized_db.applied_migrations())


def test_a_lost_migration_record_is_not_hidden_by_the_fast_path(initialized_db):
    initialized_db.execute("DELETE FROM django_migrations WHERE app = 'dbinit' AND name = '0003_metadata'")
    proc = python("tests/probes/startup_modules.py", db=initialized_db, env=CHECK)
    assert proc.returncode == 3
    assert "dbinit.C002" in proc.stderr and "dbinit.W024" in proc.stderr


def test_a_different_stored_fingerprint_takes_the_slow_path_and_is_replaced(initialized_db):
    right = stored(initialized_db)
    wrong = {**right, "digest": "0" * 64, "django": "4.2.0"}
    initialized_db.execute(f"UPDATE dbinit_metadata SET value = '{json.dumps(wrong)}' "
                           "WHERE key = 'migration_fingerprint'")
    result = steps(manage("initdb", "--noinput", "--format", "json", db=initialized_db))
    assert result["lock"]["status"] == "skipped"
    assert result["lock"]["summary"] == "nothing to do"  # decided by Django's loader, not the fingerprint
    assert "fingerprint" not in result["migrate"]["detail"]
    assert stored(initialized_db)["digest"] == right["digest"]


def test_a_plain_migrate_makes_the_fast_path_forget_the_last_verification(initialized_db):
    assert stored(initialized_db) is not None
    # Unapplied and applied again for real (a lost record is no longer something plain migrate
    # may be run over: dbinit's database checks stop it, see the dbhealth section of the README).
    for args in (("accounts", "0001"), ("accounts",)):
        proc = manage("migrate", *args, db=initialized_db)
        assert proc.returncode == 0, proc.stderr
    assert stored(initialized_db) is None
    result = steps(manage("initdb", "--noinput", "--format", "json", db=initialized_db))
    assert result["lock"]["summary"] == "nothing to do"  # Django's loader decided, then it was stored again
    assert stored(initialized_db)["applied"] == len(initialized_db.applied_migrations())


def test_health_readiness_reports_the_verified_set(initialized_db):
    proc = python("tests/probes/health.py", "?format=json", db=initialized_db)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == 200
    report = python("tests/probes/startup_modules.py", db=initialized_db, env=CHECK)
    assert json.loads(report.stdout) == {"migration_modules": 0}


def test_the_digest_follows_files_django_version_engine_and_schema_settings(tmp_path, monkeypatch, settings):
    from dbinit import fingerprint

    files = [("app", tmp_path / "0001_initial.py"), ("app", tmp_path / "0002_more.py")]
    for _, path in files:
        path.write_text("operations = []\n")
    monkeypatch.setattr(fingerprint, "_migration_paths", lambda: [(label, str(path)) for label, path in files])
    base = fingerprint.compute("sqlite 3")
    assert fingerprint.compute("sqlite 3") == base
    assert base.parts["files"] == 2
    files[1][1].write_text("operations = [1]\n")
    edited = fingerprint.compute("sqlite 3")
    assert edited != base and edited.differences(base.parts) == ["migrations changed"]
    assert fingerprint.compute("sqlite 3", django_version="4.2.0").differences(edited.parts) == [
        f"django 4.2.0 != {edited.parts['django']}"]
    assert fingerprint.compute("postgresql 15") != edited
    settings.AUTH_USER_MODEL = "auth.User"
    assert fingerprint.compute("sqlite 3").differences(edited.parts) == ["settings changed"]


def test_migration_files_lists_every_migration_file_of_every_app_once():
    from dbinit import fingerprint

    found = fingerprint.migration_files()
    labels = {(label, path.stem) for label, path in found}
    assert ("tenants", "0001_initial") in labels and ("dbinit", "0003_metadata") in labels
    assert not any(path.name.startswith("_") for _, path in found)
    assert len(found) == len(labels)


# What reading constraints and indexes looks like on each engine (the drift comparison's second read).
CONSTRAINT_READS = ("pg_constraint", "pg_index", "pragma_index_list", "pragma_foreign_key_list")


def probe_queries(db, *args, env=None) -> dict:
    proc = python("tests/probes/startup_queries.py", *args, db=db, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_verified_startup_check_reads_tables_and_columns_but_no_constraint(initialized_db):
    found = probe_queries(initialized_db, "wsgi", env=CHECK)
    assert found["migration_modules"] == 0
    assert not [q for q in found["queries"] if any(word in q for word in CONSTRAINT_READS)]
    assert [q for q in found["queries"] if "pg_attribute" in q or "pragma_table_xinfo" in q]
    # Connecting, the stored fingerprint, one read of tables with their columns, the seed lookups:
    # a fixed number of statements, whatever the number of tables or migrations.
    assert len(found["queries"]) <= 12, found["queries"]
    # Whether the server is read-only (a standby) is asked once, not again by the connectivity check.
    asked = [q for q in found["queries"] if "default_transaction_read_only" in q or "PRAGMA query_only" in q]
    assert len(asked) == 1, found["queries"]


def test_a_noop_initdb_reads_no_constraint_and_no_migration_module(initialized_db):
    found = probe_queries(initialized_db, "initdb", "--noinput")
    assert found["migration_modules"] == 0
    assert not [q for q in found["queries"] if any(word in q for word in CONSTRAINT_READS)]
    assert len(found["queries"]) <= 16, found["queries"]


def test_the_verified_startup_check_still_finds_a_dropped_column(initialized_db):
    initialized_db.drop_column("accounts_role", "description")
    proc = python("tests/probes/startup_modules.py", db=initialized_db, env=CHECK)
    assert proc.returncode == 3, proc.stderr
    assert "dbinit.C002" in proc.stderr and "dbinit.E031" in proc.stderr
    assert "accounts_role.description" in proc.stderr


def test_the_verified_startup_check_still_finds_a_dropped_table(initialized_db):
    initialized_db.drop_table("tenants_tenant")
    proc = python("tests/probes/startup_modules.py", db=initialized_db, env=CHECK)
    assert proc.returncode == 3, proc.stderr
    assert "dbinit.E030" in proc.stderr and "tenants_tenant" in proc.stderr


def test_dbhealth_still_reads_constraints_and_finds_a_dropped_index(initialized_db):
    """The lazy constraint read: dbhealth (the graph's full comparison) still asks for them."""
    index = next(name for (name,) in initialized_db.query(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'accounts_user' AND indexname LIKE %s"
        if initialized_db.engine == "postgresql" else
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'accounts_user' AND name LIKE %s",
        ["%tenant_id%"]))
    initialized_db.execute(f'DROP INDEX "{index}"')
    proc = manage("dbhealth", "--format", "json", db=initialized_db)
    checks = json.loads(proc.stdout)["checks"]
    assert [c["id"] for c in checks if c["check"] == "schema" and c["status"] == "warning"] == ["dbinit.W026"]
