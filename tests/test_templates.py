"""Fresh databases from a verified template: the same database migrate makes, and every bad template
(stale, from another Django version, without a readable stamp, damaged) detected, ignored and replaced
while the normal path runs. initdb's seed with the well-known password comes with a seeded template."""

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from dbinit.fingerprint import KEY
from tests.support.databases import ScratchDatabase, drop_databases_named, manage, postgres_server_url, server_query
from tests.support.identity import objects, rows


def initdb(db, env, *args) -> dict:
    proc = manage("initdb", "--noinput", "--format", "json", *args, db=db, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {s["name"]: s for s in json.loads(proc.stdout)["steps"]}


def admin_logs_in_with(db, password) -> bool:
    """Django's own check of the seeded admin's stored password (in a process with the project's hashers)."""
    proc = manage("shell", "-c", "from django.contrib.auth import authenticate; "
                  f"print(authenticate(email='admin@ai-secretary.com', password={password!r}) is not None)", db=db)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1] == "True"  # after the shell's "objects imported" line


def template_names(engine, templates) -> list[str]:
    """This test's templates: SQLite file names, or PostgreSQL database names."""
    if engine == "sqlite":
        from pathlib import Path

        return sorted(p.name for p in Path(templates["DBINIT_TEMPLATE_DIR"]).glob("*.sqlite3"))
    return sorted(r[0] for r in server_query(postgres_server_url(), "SELECT datname FROM pg_database "
                                                                    "WHERE starts_with(datname, %s)",
                                             [templates["DBINIT_TEMPLATE_PREFIX"]]))


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
        # The well-known development password: the seed came with the (seeded) template, nothing hashed.
        assert detail["template_seeded"] is True and made["seed"]["created"] == 0
        assert made["migrate"]["created"] == 0
        assert objects(copied) == objects(migrated)
        copied_rows, migrated_rows = rows(copied), rows(migrated)
        for table in ("django_migrations", "django_content_type", "auth_permission", "tenants_tenant",
                      "accounts_role", "accounts_user", "auth_group", "auth_group_permissions",
                      "dbinit_migrationchecksum"):
            assert copied_rows[table], table
        assert copied_rows == migrated_rows
        assert admin_logs_in_with(copied, "admin123") and not admin_logs_in_with(copied, "admin1234")
        # The base template (what migrate makes, no seed) and the seeded one.
        assert len(template_names(engine, templates)) == 2
    finally:
        for db in (migrated, first, copied):
            db.drop()


def test_without_the_seed_or_with_another_password_the_base_template_is_used(engine, tmp_path, templates):
    migrated, unseeded, other = (new_db(engine, tmp_path, n) for n in ("migrated", "unseeded", "other"))
    try:
        initdb(migrated, {"DBINIT_TEMPLATES": "off"}, "--no-seed")
        result = initdb(unseeded, templates, "--no-seed")
        detail = result["database"]["detail"]
        assert detail["template"] and detail["template_seeded"] is False
        assert unseeded.scalar("SELECT COUNT(*) FROM accounts_user") == 0
        assert objects(unseeded) == objects(migrated) and rows(unseeded) == rows(migrated)
        assert len(template_names(engine, templates)) == 1  # no seeded template was made for --no-seed

        # A password of one's own is never put in a template: the base template, then hashed as usual.
        result = initdb(other, {**templates, "DBINIT_ADMIN_PASSWORD": "Another-dev-pw-5150"})
        detail = result["database"]["detail"]
        assert detail["template"] and detail["template_seeded"] is False and not detail["template_built"]
        assert any(c.startswith("admin:") for c in result["seed"]["detail"]["created"])
        assert admin_logs_in_with(other, "Another-dev-pw-5150") and not admin_logs_in_with(other, "admin123")
        assert len(template_names(engine, templates)) == 1
    finally:
        for db in (migrated, unseeded, other):
            db.drop()


def corrupt(engine, templates, how):
    """Damage every template of this test (the base and the seeded one) in the way ``how`` names."""
    from pathlib import Path

    if engine == "sqlite":
        paths = sorted(Path(templates["DBINIT_TEMPLATE_DIR"]).glob("*.sqlite3"))
        assert paths
        for path in paths:
            if how == "damaged":
                path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8192)
                continue
            db = ScratchDatabase("sqlite", f"sqlite:///{path}", path=path)
            if how == "unreadable":
                value = "not a fingerprint"
            else:
                value = json.loads(db.scalar(f"SELECT value FROM dbinit_metadata WHERE key = '{KEY}'"))
                value = json.dumps({**value, **how})
            db.execute("UPDATE dbinit_metadata SET value = '" + value + f"' WHERE key = '{KEY}'")
        return
    server = postgres_server_url()
    found = server_query(server, "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                                 "WHERE starts_with(datname, %s)", [templates["DBINIT_TEMPLATE_PREFIX"]])
    assert found
    for name, comment in found:
        stamp = "not a fingerprint" if how == "unreadable" else json.dumps({**json.loads(comment), **how})
        server_query(server, f"COMMENT ON DATABASE \"{name}\" IS '{stamp}'")


@pytest.mark.parametrize("how, reason", [
    ({"django": "4.2.0", "digest": "0" * 64}, "its fingerprint differs (django"),
    ({"migrations": "1" * 64, "digest": "1" * 64}, "its fingerprint differs (migrations changed)"),
    ("unreadable", None),
], ids=["other-django-version", "stale", "unreadable-stamp"])
def test_a_template_with_another_fingerprint_is_ignored_and_replaced(engine, tmp_path, templates, how, reason):
    if how == "unreadable":  # SQLite cannot parse the stamp; PostgreSQL's comment carries none
        reason = "it is damaged" if engine == "sqlite" else "it carries no fingerprint"
    dbs = [new_db(engine, tmp_path, n) for n in ("first", "second", "third")]
    try:
        initdb(dbs[0], templates)
        names = template_names(engine, templates)
        corrupt(engine, templates, how)
        second = initdb(dbs[1], templates)
        ignored = second["database"]["detail"]["templates_ignored"]
        # The seeded template first, then the base it is built from: both seen bad, both rebuilt.
        assert len(ignored) == 2
        assert all(i["id"] == "dbinit.I017" and reason in i["message"] for i in ignored), ignored
        assert second["database"]["detail"]["template_built"] is True  # rebuilt, then used
        assert second["migrate"]["created"] == 0 and second["database"]["detail"]["template_seeded"] is True
        assert dbs[1].applied_migrations() == dbs[0].applied_migrations()
        assert objects(dbs[1]) == objects(dbs[0]) and rows(dbs[1]) == rows(dbs[0])
        assert template_names(engine, templates) == names  # replaced under the same names
        third = initdb(dbs[2], templates)
        assert third["database"]["detail"]["templates_ignored"] == []
        assert third["database"]["detail"]["template_built"] is False
    finally:
        for db in dbs:
            db.drop()


HISTORY_INDEX = "dbinit_migrations_app_name_uniq"


def history_index_count(db) -> int:
    if db.engine == "sqlite":
        return db.scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?", (HISTORY_INDEX,))
    return db.scalar("SELECT COUNT(*) FROM pg_indexes WHERE indexname = %s", (HISTORY_INDEX,))


def make_format_1(engine, templates):
    """Turn this test's templates into what dbinit made before templates carried the history's unique
    index (format 1): no index; SQLite's file named without its format, PostgreSQL's stamp without one."""
    from pathlib import Path

    if engine == "sqlite":
        for path in sorted(Path(templates["DBINIT_TEMPLATE_DIR"]).glob("*.sqlite3")):
            db = ScratchDatabase("sqlite", f"sqlite:///{path}", path=path)
            db.execute(f"DROP INDEX {HISTORY_INDEX}")
            path.rename(path.with_name(path.name.replace("-f2", "")))
        return
    server = postgres_server_url()
    for name, comment in server_query(server, "SELECT datname, shobj_description(oid, 'pg_database') FROM "
                                              "pg_database WHERE starts_with(datname, %s)",
                                      [templates["DBINIT_TEMPLATE_PREFIX"]]):
        server_query(server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        ScratchDatabase.named(name, server).execute(f"DROP INDEX {HISTORY_INDEX}")
        server_query(server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        stamp = json.loads(comment)
        stamp.pop("format", None)
        server_query(server, f"COMMENT ON DATABASE \"{name}\" IS '{json.dumps(stamp)}'")


def test_a_template_an_older_dbinit_made_is_rebuilt_not_patched(engine, tmp_path, templates):
    """A template of the previous format (no unique index on django_migrations) is never copied: it is
    rebuilt (PostgreSQL: under its name; SQLite: a new file, the old one removed), and the database
    made from the new one has the index as initdb's migrate makes it."""
    dbs = [new_db(engine, tmp_path, n) for n in ("first", "second")]
    try:
        initdb(dbs[0], templates)
        names = template_names(engine, templates)
        assert len(names) == 2 and history_index_count(dbs[0]) == 1
        make_format_1(engine, templates)
        second = initdb(dbs[1], templates)
        detail = second["database"]["detail"]
        assert detail["template_built"] is True and detail["template_seeded"] is True
        if engine == "postgresql":  # the stamp says format 1: both seen, both rebuilt under their names
            ignored = detail["templates_ignored"]
            assert len(ignored) == 2, ignored
            assert all(i["id"] == "dbinit.I017" and "template format 1, now 2" in i["message"] for i in ignored)
        else:  # files of format 1 have other names: never opened, removed once the new ones are built
            assert detail["templates_ignored"] == []
        assert template_names(engine, templates) == names
        assert history_index_count(dbs[1]) == 1
        assert objects(dbs[1]) == objects(dbs[0]) and rows(dbs[1]) == rows(dbs[0])
    finally:
        for db in dbs:
            db.drop()


@pytest.mark.sqlite_only
def test_a_damaged_template_file_is_ignored_and_replaced(tmp_path, templates):
    dbs = [new_db("sqlite", tmp_path, n) for n in ("first", "second")]
    initdb(dbs[0], templates)
    corrupt("sqlite", templates, "damaged")
    second = initdb(dbs[1], templates)
    ignored = second["database"]["detail"]["templates_ignored"]
    assert len(ignored) == 2
    assert all(i["id"] == "dbinit.I017" and "it is damaged" in i["message"] for i in ignored), ignored
    assert second["database"]["detail"]["template_built"] is True
    assert dbs[1].applied_migrations() == dbs[0].applied_migrations()
    assert rows(dbs[1]) == rows(dbs[0])
    assert dbs[1].scalar("PRAGMA quick_check") == "ok"


@pytest.mark.postgresql_only
def test_a_template_database_with_a_dropped_table_is_not_trusted_by_its_stamp_alone(tmp_path, templates):
    """PostgreSQL's "corrupted template": its content damaged behind a stamp that still matches.

    The stamp cannot see this; the copy's verify step does, and initdb fails with the id instead of
    handing out a broken database (dbrepair, or dropping the template, fixes it)."""
    dbs = [new_db("postgresql", tmp_path, n) for n in ("first", "second")]
    try:
        initdb(dbs[0], templates)
        server = postgres_server_url()
        for name in template_names("postgresql", templates):
            server_query(server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            ScratchDatabase.named(name, server).execute("DROP TABLE django_session")
            server_query(server, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        proc = manage("initdb", "--noinput", db=dbs[1], env=templates)
        assert proc.returncode == 1
        assert "dbinit.E030" in proc.stderr + proc.stdout and "django_session" in proc.stderr + proc.stdout
        assert "Traceback" not in proc.stderr
    finally:
        for db in dbs:
            db.drop()


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


# --- older migration sets' templates (DBINIT_TEMPLATE_KEEP) ------------------------------------------
OLDER = {"old1": 3000, "old2": 2000, "old3": 1000}  # a migration set of this lineage -> built this long ago (s)


def current_templates(engine, templates, start) -> list[tuple[str, dict]]:
    """(name, stamp) of this test's templates whose name (after the prefix) starts with ``start``."""
    if engine == "sqlite":
        found = []
        for path in sorted(Path(templates["DBINIT_TEMPLATE_DIR"]).glob(start + "*.sqlite3")):
            db = ScratchDatabase("sqlite", f"sqlite:///{path}", path=path)
            found.append((path.name, json.loads(db.scalar(f"SELECT value FROM dbinit_metadata WHERE key = '{KEY}'"))))
        return found
    return [(name, json.loads(comment)) for name, comment in server_query(
        postgres_server_url(), "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                               "WHERE starts_with(datname, %s) ORDER BY 1",
        [templates["DBINIT_TEMPLATE_PREFIX"] + start])]



def copy_template(engine, templates, source, target, stamp: dict, built: float) -> str:
    """Copy this test's template ``source`` as ``target`` (names as template_names gives them), stamped
    ``stamp``; SQLite: the file's time is ``built``, as dbinit reads it (PostgreSQL: the stamp's). Returns ``target``."""
    text = json.dumps(stamp)
    if engine == "sqlite":
        folder = Path(templates["DBINIT_TEMPLATE_DIR"])
        shutil.copyfile(folder / source, folder / target)
        ScratchDatabase("sqlite", f"sqlite:///{folder / target}", path=folder / target).execute(
            f"UPDATE dbinit_metadata SET value = '{text}' WHERE key = '{KEY}'")
        os.utime(folder / target, (built, built))
        return target
    server = postgres_server_url()
    server_query(server, f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    server_query(server, f"COMMENT ON DATABASE \"{target}\" IS '{text}'")
    server_query(server, f'ALTER DATABASE "{target}" ALLOW_CONNECTIONS false')
    return target


def add_older_set(engine, templates, start, tag, seconds_ago, changes=None, name=None) -> list[str]:
    """Copy the templates named ``start``... (the current migration set's base and seeded ones) as the
    templates of another migration set built ``seconds_ago``: a made-up digest in the stamp (and
    ``changes``), named as dbinit would name them (or only the first, as ``name``). Returns the new names."""
    digest, built = hashlib.sha256(tag.encode()).hexdigest(), time.time() - seconds_ago
    prefix = "" if engine == "sqlite" else templates["DBINIT_TEMPLATE_PREFIX"]
    width = 32 if engine == "sqlite" else 24  # the digest's part of a name
    return [copy_template(engine, templates, current, name or prefix + digest[:width] + current[len(prefix) + width:],
                          {**stamp, "digest": digest, "migrations": digest, "built": built, **(changes or {})}, built)
            for current, stamp in current_templates(engine, templates, start)[:1 if name else None]]


def remove_templates(engine, templates, names):
    for name in names:
        if engine == "sqlite":
            (Path(templates["DBINIT_TEMPLATE_DIR"]) / name).unlink()
        else:
            server_query(postgres_server_url(), f'DROP DATABASE "{name}"')


@pytest.mark.parametrize("keep", ["2", "0"])
def test_building_a_template_removes_older_migration_sets_beyond_DBINIT_TEMPLATE_KEEP(engine, tmp_path, templates,
                                                                                    keep):
    """A new migration set's template removes the templates of the same engine, alias and schema settings
    whose migration sets are not among the DBINIT_TEMPLATE_KEEP newest (the new one counted); another
    alias's templates, anything dbinit did not name and stamps dbinit did not write are left alone.
    0 keeps every one."""
    env = {**templates, "DBINIT_TEMPLATE_KEEP": keep}
    first, second = new_db(engine, tmp_path, "first"), new_db(engine, tmp_path, "second")
    try:
        initdb(first, env)
        current = template_names(engine, templates)
        assert len(current) == 2  # the base template and the seeded one
        start = current[0][len("" if engine == "sqlite" else templates["DBINIT_TEMPLATE_PREFIX"]):][:8]
        older = {tag: add_older_set(engine, templates, start, tag, ago) for tag, ago in OLDER.items()}
        other_alias = add_older_set(engine, templates, start, "other-alias", 5000, {"alias": "replica"})
        by_hand = add_older_set(engine, templates, start, "by-hand", 9000, name="kept-by-hand.sqlite3"
                                if engine == "sqlite" else templates["DBINIT_TEMPLATE_PREFIX"] + "by_hand")
        # Named as dbinit names them, stamped with what dbinit never writes: not judged, left alone.
        odd_stamp = add_older_set(engine, templates, start, "odd-stamp", 8000,
                                  {"digest": ["not", "a", "digest"], "built": "soon"})
        assert all(len(names) == 2 for names in [*older.values(), other_alias, odd_stamp]) and len(by_hand) == 1
        remove_templates(engine, templates, current)  # the next initdb builds the current set's again

        result = initdb(second, env)
        detail = result["database"]["detail"]
        assert detail["template_built"] is True and detail["template_seeded"] is True
        removed = older["old1"] + older["old2"] if keep == "2" else []
        assert sorted(Path(p).name for p in detail["templates_removed"]) == sorted(removed)
        assert template_names(engine, templates) == sorted(
            set(current + [n for names in older.values() for n in names] + other_alias + by_hand + odd_stamp)
            - set(removed))
        assert objects(second) == objects(first) and rows(second) == rows(first)
    finally:
        first.drop()
        second.drop()


def add_older_seed(engine, templates, seeded, key, seconds_ago, changes=None) -> str:
    """Copy the seeded template ``seeded`` as the same migration set's template of another seed ``key``
    (10 hex digits, as dbinit's), built ``seconds_ago``, named as dbinit would name it. Returns its name."""
    start = seeded.removesuffix(".sqlite3") if engine == "sqlite" else seeded[len(templates["DBINIT_TEMPLATE_PREFIX"]):]
    stamp = current_templates(engine, templates, start)[0][1]
    target = (seeded[:seeded.index("-seed-")] + f"-seed-{key}.sqlite3" if engine == "sqlite"
              else seeded[:seeded.index("_seed_")] + f"_seed_{key}")
    built = time.time() - seconds_ago
    return copy_template(engine, templates, seeded, target, {**stamp, "seed": key, "built": built, **(changes or {})},
                         built)


@pytest.mark.parametrize("keep", ["2", "0"])
def test_building_a_seeded_template_keeps_the_newest_seeds_of_its_migration_set(engine, tmp_path, templates, keep):
    """Seeded templates of one migration set (one per seed: admin address, environment, hasher, the seed
    code's source) are bounded too: building one removes that set's seeded templates beyond the
    DBINIT_TEMPLATE_KEEP newest (the new one counted); the base template and another alias's seeded
    templates stay. 0 keeps every one."""
    env = {**templates, "DBINIT_TEMPLATE_KEEP": keep}
    first, second = new_db(engine, tmp_path, "first"), new_db(engine, tmp_path, "second")
    try:
        initdb(first, env)
        current = template_names(engine, templates)
        seeded = [name for name in current if "seed" in name]
        assert len(current) == 2 and len(seeded) == 1  # the base template and the seeded one
        older = {ago: add_older_seed(engine, templates, seeded[0], key, ago)
                 for key, ago in (("a1a1a1a1a1", 3000), ("b2b2b2b2b2", 2000), ("c3c3c3c3c3", 1000))}
        other_alias = add_older_seed(engine, templates, seeded[0], "d4d4d4d4d4", 4000, {"alias": "replica"})
        remove_templates(engine, templates, seeded)  # the next initdb builds this seed's template again

        result = initdb(second, env)
        detail = result["database"]["detail"]
        assert detail["template_built"] is True and detail["template_seeded"] is True
        removed = [older[3000], older[2000]] if keep == "2" else []
        assert sorted(Path(p).name for p in detail["templates_removed"]) == sorted(removed)
        assert template_names(engine, templates) == sorted(set(current + list(older.values()) + [other_alias])
                                                           - set(removed))
        assert objects(second) == objects(first) and rows(second) == rows(first)
        assert admin_logs_in_with(second, "admin123")
    finally:
        first.drop()
        second.drop()


@pytest.mark.postgresql_only
def test_a_template_that_cannot_be_cloned_leaves_the_normal_path(tmp_path, templates):
    """A template found valid but not cloned: here another role's, on a shared server (a role with CREATEDB
    may create databases, not copy one it does not own); also a template another checkout's initdb removed
    a moment before as an older migration set. initdb migrates the new database as without templates
    (before: E013, "permission denied to copy database")."""
    import uuid

    first, second = new_db("postgresql", tmp_path, "first"), new_db("postgresql", tmp_path, "second")
    server, role = postgres_server_url(), f"dbinit_creator_{uuid.uuid4().hex[:8]}"
    try:
        initdb(first, templates)  # the templates belong to the test server's role
        server_query(server, f'CREATE ROLE "{role}" LOGIN CREATEDB')
        as_role = second.url.replace("//root@", f"//{role}@", 1)
        assert as_role != second.url
        result = initdb(second, {**templates, "DATABASE_URL": as_role})
        assert result["database"]["detail"]["template"] is None
        assert result["migrate"]["created"] == len(second.applied_migrations()) > 0
        assert second.scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()") \
            == role
        assert objects(second) == objects(first) and rows(second) == rows(first)
    finally:
        first.drop()
        second.drop()
        server_query(server, f'DROP ROLE IF EXISTS "{role}"')
