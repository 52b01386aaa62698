"""Fresh databases from a verified template: the same database migrate makes, and every bad template
(stale, from another Django version, damaged) detected, ignored and replaced while the normal path runs."""

import json

import pytest

from tests.support.databases import ScratchDatabase, drop_databases_named, manage, postgres_server_url
from tests.support.identity import objects, rows


def initdb(db, env) -> dict:
    proc = manage("initdb", "--noinput", "--format", "json", db=db, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {s["name"]: s for s in json.loads(proc.stdout)["steps"]}


def new_db(engine, tmp_path, name) -> ScratchDatabase:
    return ScratchDatabase.new(engine, tmp_path / name)


def test_a_template_made_database_is_the_one_migrate_makes(engine, tmp_path, templates):
    migrated = new_db(engine, tmp_path, "migrated")
    first = new_db(engine, tmp_path, "first")
    copied = new_db(engine, tmp_path, "copied")
    try:
        normal = initdb(migrated, {"DBINIT_TEMPLATES": "off"})
        assert normal["migrate"]["created"] == len(migrated.applied_migrations())
        built = initdb(first, templates)
        assert built["database"]["detail"]["template_built"] is True
        made = initdb(copied, templates)
        detail = made["database"]["detail"]
        assert detail["template"] and detail["template_built"] is False and detail["templates_ignored"] == []
        assert made["migrate"]["created"] == 0
        assert objects(copied) == objects(migrated)
        copied_rows, migrated_rows = rows(copied), rows(migrated)
        for table in ("django_migrations", "django_content_type", "auth_permission", "tenants_tenant",
                      "accounts_role", "accounts_user", "auth_group", "dbinit_migrationchecksum"):
            assert copied_rows[table], table
        assert copied_rows == migrated_rows
    finally:
        for db in (migrated, first, copied):
            db.drop()


def corrupt(engine, templates, how):
    """Damage the one template of this test in the way ``how`` names."""
    from pathlib import Path

    if engine == "sqlite":
        [path] = Path(templates["DBINIT_TEMPLATE_DIR"]).glob("*.sqlite3")
        if how == "damaged":
            path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
            return
        db = ScratchDatabase("sqlite", f"sqlite:///{path}", path=path)
        stamp = json.loads(db.scalar("SELECT value FROM dbinit_metadata WHERE key = 'migration_fingerprint'"))
        stamp.update(how)
        db.execute("UPDATE dbinit_metadata SET value = '" + json.dumps(stamp) + "' WHERE key = 'migration_fingerprint'")
        return
    from tests.support.databases import server_query

    server = postgres_server_url()
    [(name, comment)] = server_query(server, "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                                             "WHERE starts_with(datname, %s)", [templates["DBINIT_TEMPLATE_PREFIX"]])
    stamp = json.loads(comment)
    stamp.update(how)
    server_query(server, f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(stamp)}'")


@pytest.mark.parametrize("how, reason", [
    ({"django": "4.2.0", "digest": "0" * 64}, "its fingerprint differs (django"),
    ({"migrations": "1" * 64, "digest": "1" * 64}, "its fingerprint differs (migrations changed)"),
], ids=["other-django-version", "stale"])
def test_a_template_with_another_fingerprint_is_ignored_and_replaced(engine, tmp_path, templates, how, reason):
    dbs = [new_db(engine, tmp_path, n) for n in ("first", "second", "third")]
    try:
        initdb(dbs[0], templates)
        corrupt(engine, templates, how)
        second = initdb(dbs[1], templates)
        [ignored] = second["database"]["detail"]["templates_ignored"]
        assert ignored["id"] == "dbinit.I017" and reason in ignored["message"]
        assert second["database"]["detail"]["template_built"] is True  # rebuilt, then used
        assert dbs[1].applied_migrations() == dbs[0].applied_migrations()
        third = initdb(dbs[2], templates)
        assert third["database"]["detail"]["templates_ignored"] == []
        assert third["database"]["detail"]["template_built"] is False
    finally:
        for db in dbs:
            db.drop()


@pytest.mark.sqlite_only
def test_a_damaged_template_file_is_ignored_and_replaced(tmp_path, templates):
    dbs = [new_db("sqlite", tmp_path, n) for n in ("first", "second")]
    initdb(dbs[0], templates)
    corrupt("sqlite", templates, "damaged")
    second = initdb(dbs[1], templates)
    [ignored] = second["database"]["detail"]["templates_ignored"]
    assert ignored["id"] == "dbinit.I017" and "it is damaged" in ignored["message"]
    assert second["database"]["detail"]["template_built"] is True
    assert dbs[1].applied_migrations() == dbs[0].applied_migrations()
    assert dbs[1].scalar("PRAGMA quick_check") == "ok"


def test_templates_off_migrates_normally_and_builds_nothing(engine, tmp_path, templates):
    db = new_db(engine, tmp_path, "db")
    try:
        result = initdb(db, {**templates, "DBINIT_TEMPLATES": "off"})
        assert result["migrate"]["created"] == len(db.applied_migrations())
        assert result["database"]["detail"]["template"] is None
        if engine == "sqlite":
            assert not (tmp_path / "templates").exists()
        else:
            assert drop_databases_named(postgres_server_url(), templates["DBINIT_TEMPLATE_PREFIX"]) == []
    finally:
        db.drop()


def test_resetdb_makes_the_new_database_from_the_template(engine, tmp_path, templates):
    first, db = new_db(engine, tmp_path, "first"), new_db(engine, tmp_path, "db")
    try:
        initdb(first, templates)
        initdb(db, {**templates, "DBINIT_TEMPLATES": "off"})
        db.execute("DELETE FROM tenants_tenant WHERE slug <> 'system'")
        proc = manage("resetdb", "--noinput", "--no-backup", "--format", "json", db=db, env=templates)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        steps = {s["name"]: s for s in json.loads(proc.stdout)["initdb"]["steps"]}
        assert steps["database"]["detail"]["template"]
        assert steps["migrate"]["created"] == 0
        assert db.applied_migrations() == first.applied_migrations()
    finally:
        first.drop()
        db.drop()
