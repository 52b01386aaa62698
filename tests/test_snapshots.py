"""The committed snapshot (manage.py dbsnapshot): current in the repository, loaded when it matches,
ignored (dbinit.I018) when stale, and reported by dbhealth (dbinit.W100) and dbsnapshot --check."""

import json

import pytest

from tests.support.databases import ScratchDatabase, manage
from tests.support.identity import objects, rows


def initdb(db, env) -> dict:
    proc = manage("initdb", "--noinput", "--format", "json", db=db, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {s["name"]: s for s in json.loads(proc.stdout)["steps"]}


@pytest.fixture
def snapshot_env(tmp_path, templates, engine):
    """Templates on, a snapshot written for this test alone; yields (env, the snapshot's path)."""
    env = {**templates, "DBINIT_SNAPSHOT_DIR": str(tmp_path / "snapshots")}
    db = ScratchDatabase.new(engine, tmp_path / "snapshot-target")
    proc = manage("dbsnapshot", "--format", "json", db=db, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    path = json.loads(proc.stdout)["snapshot"]
    assert not db.exists()  # dbsnapshot works in a scratch database of its own
    yield env, path


def test_the_committed_snapshot_matches_the_migrations(initialized_db):
    """CI's guard, like makemigrations --check: a new migration needs python manage.py dbsnapshot."""
    proc = manage("dbsnapshot", "--check", db=initialized_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "matches the migration files" in proc.stdout


def test_a_snapshot_made_database_is_the_one_migrate_makes(engine, tmp_path, snapshot_env):
    env, path = snapshot_env
    with open(path, encoding="utf-8") as fh:
        assert fh.readline().startswith("-- dbinit snapshot")
        assert fh.readline().startswith("-- dbinit fingerprint: {")
    migrated = ScratchDatabase.new(engine, tmp_path / "migrated")
    loaded = ScratchDatabase.new(engine, tmp_path / "loaded")
    try:
        initdb(migrated, {"DBINIT_TEMPLATES": "off"})
        result = initdb(loaded, env)
        detail = result["database"]["detail"]
        assert detail["snapshot"] == path and detail["template_built"] is True
        assert detail["templates_ignored"] == []
        assert result["migrate"]["created"] == 0
        assert objects(loaded) == objects(migrated)
        assert rows(loaded) == rows(migrated)
    finally:
        migrated.drop()
        loaded.drop()


def test_a_stale_snapshot_is_ignored_reported_and_fails_the_check(engine, tmp_path, snapshot_env):
    env, path = snapshot_env
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    header, stamp_line, body = text.split("\n", 2)
    stamp = json.loads(stamp_line.split(": ", 1)[1])
    stamp.update(digest="2" * 64, migrations="2" * 64)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"{header}\n-- dbinit fingerprint: {json.dumps(stamp)}\n{body}")
    db = ScratchDatabase.new(engine, tmp_path / "db")
    try:
        result = initdb(db, env)
        detail = result["database"]["detail"]
        [ignored] = detail["templates_ignored"]
        assert ignored["id"] == "dbinit.I018" and ignored["level"] == "info"
        assert "its fingerprint differs (migrations changed)" in ignored["message"]
        assert detail["snapshot"] is None and detail["template_built"] is True  # built by migrating
        assert result["migrate"]["created"] == 0 and db.applied_migrations()

        health = manage("dbhealth", "--check", "snapshot", "--fail-level", "WARNING", "--format", "json",
                        db=db, env=env)
        assert health.returncode == 1
        assert [c["id"] for c in json.loads(health.stdout)["checks"]] == ["dbinit.I001", "dbinit.W100"]

        check = manage("dbsnapshot", "--check", db=db, env=env)
        assert check.returncode == 1
        assert "dbinit.W100" in check.stderr and "Traceback" not in check.stderr
    finally:
        db.drop()


def test_dbsnapshot_check_fails_when_there_is_no_snapshot(tmp_path, engine):
    db = ScratchDatabase.new(engine, tmp_path / "db")
    proc = manage("dbsnapshot", "--check", db=db, env={"DBINIT_SNAPSHOT_DIR": str(tmp_path / "none")})
    assert proc.returncode == 1
    assert "dbinit.W100" in proc.stderr and "it does not exist" in proc.stderr


def test_a_snapshot_that_cannot_be_loaded_is_ignored_and_the_migrations_run(engine, tmp_path, snapshot_env):
    env, path = snapshot_env
    with open(path, encoding="utf-8") as fh:
        header, stamp_line, _ = fh.read().split("\n", 2)
    with open(path, "w", encoding="utf-8") as fh:  # the right fingerprint, a broken body
        fh.write(f"{header}\n{stamp_line}\nCREATE TABLE half_written (\n")
    db = ScratchDatabase.new(engine, tmp_path / "db")
    try:
        result = initdb(db, env)
        detail = result["database"]["detail"]
        [ignored] = detail["templates_ignored"]
        assert ignored["id"] == "dbinit.I018" and "could not be loaded" in ignored["message"]
        assert detail["snapshot"] is None and detail["template_built"] is True
        assert "half_written" not in db.tables()
        assert result["migrate"]["created"] == 0  # the template, built by migrating, had them all
        stamp = json.loads(db.scalar("SELECT value FROM dbinit_metadata WHERE key = 'migration_fingerprint'"))
        assert len(db.applied_migrations()) == stamp["applied"] == stamp["files"]
    finally:
        db.drop()
